"""Model Garden training and evaluation through tfod_seg.engines.garden (tiny model, few steps)."""

import math
import os

import pytest

from tests.garden_fixtures import TINY_STEPS, copy_model_dir, write_tiny_config
from tfod_seg.errors import EngineError


def _ckpt_values(path, prefix):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(path)
    keys = sorted(k for k in reader.get_variable_to_shape_map()
                  if k.startswith(prefix) and "kernel" in k and "OPTIMIZER_SLOT" not in k)
    assert keys, f"no {prefix} kernel in {path}"
    return {k: reader.get_tensor(k) for k in keys}


def test_tiny_model_trains_loss_falls_and_checkpoint_appears(tiny_trained_model):
    m = tiny_trained_model
    r = m.result
    assert r.already_done is False
    assert (r.start_step, r.final_step, r.total_steps) == (0, TINY_STEPS, TINY_STEPS)
    losses = [e.loss for e in m.events if e.loss is not None]
    assert len(losses) == TINY_STEPS // 10  # one event per loop of steps_per_loop=10
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0], losses
    steps = [e.step for e in m.events]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == TINY_STEPS
    last = m.events[-1]
    assert last.eta_seconds == 0 and last.steps_per_sec > 0 and "learning_rate" in last.extra
    assert os.path.basename(r.checkpoint) == f"ckpt-{TINY_STEPS}"
    assert os.path.exists(r.checkpoint + ".index")
    # The config actually used: Model Garden's params.yaml plus a copy of the file.
    import yaml

    with open(os.path.join(m.model_dir, "params.yaml")) as f:
        params = yaml.safe_load(f)
    assert params["trainer"]["train_steps"] == TINY_STEPS
    assert params["task"]["model"]["num_classes"] == m.num_classes + 1
    assert params["runtime"]["distribution_strategy"] == "one_device"
    assert os.path.exists(os.path.join(m.model_dir, os.path.basename(m.config)))
    # TensorBoard summaries
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(m.model_dir, "train")))


def test_resume_trains_to_the_new_total_and_total_already_reached_is_a_no_op(tiny_trained_model, tmp_path):
    from tfod_seg.engines.garden.train import train

    model_dir = copy_model_dir(tiny_trained_model, str(tmp_path / "model"))
    same = train(tiny_trained_model.config, model_dir, strategy="cpu")
    assert same.already_done is True and same.trained_steps == 0 and same.final_step == TINY_STEPS
    events = []
    more = train(tiny_trained_model.config, model_dir, num_train_steps=TINY_STEPS + 10, strategy="cpu",
                 on_progress=events.append)
    assert (more.start_step, more.final_step, more.trained_steps) == (TINY_STEPS, TINY_STEPS + 10, 10)
    assert events[0].step == TINY_STEPS
    assert os.path.basename(more.checkpoint) == f"ckpt-{TINY_STEPS + 10}"


def test_evaluate_once_returns_coco_box_and_mask_metrics(tiny_trained_model, tmp_path):
    from tfod_seg.engines.garden.evaluate import evaluate

    model_dir = copy_model_dir(tiny_trained_model, str(tmp_path / "model"))
    metrics = evaluate(tiny_trained_model.config, model_dir, once=True)
    for kind in ("box", "mask"):
        for name in ("AP", "AP50", "AP75", "ARmax100"):
            value = metrics.metrics[f"{kind}_{name}"]
            assert -1.0 <= value <= 1.0, (kind, name, value)
    assert metrics.step == TINY_STEPS
    assert metrics.checkpoint.endswith(f"ckpt-{TINY_STEPS}")
    # Ground truth came from the val records: Model Garden wrote annotation.json from them.
    assert os.path.exists(os.path.join(model_dir, "annotation.json"))
    assert os.path.exists(os.path.join(model_dir, "eval_metrics.json"))


def test_evaluate_without_checkpoint_is_a_clear_error(tiny_trained_model, tmp_path):
    from tfod_seg.engines.garden.evaluate import evaluate

    with pytest.raises(EngineError, match="no checkpoint"):
        evaluate(tiny_trained_model.config, str(tmp_path / "empty"), once=True)


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tiny_trained_model, tmp_path):
    from tfod_seg.engines.garden.train import train

    model_dir = copy_model_dir(tiny_trained_model, str(tmp_path / "model"))
    cfg = write_tiny_config(str(tmp_path / "diverge.yaml"), tiny_trained_model.train_records,
                            tiny_trained_model.val_records, tiny_trained_model.num_classes, {
                                "trainer.optimizer_config.learning_rate.cosine.initial_learning_rate": 1e12,
                                "trainer.checkpoint_interval": 10,
                            })
    with pytest.raises(EngineError) as info:
        train(cfg, model_dir, num_train_steps=TINY_STEPS + 30, strategy="cpu")
    message = str(info.value)
    assert "nan" in message.lower() or "inf" in message.lower()
    assert f"ckpt-{TINY_STEPS}" in message and "kept" in message
    import tensorflow as tf

    assert tf.train.latest_checkpoint(model_dir).endswith(f"ckpt-{TINY_STEPS}")


def test_transfer_learning_restores_backbone_and_fpn_with_new_heads(tiny_trained_model, tmp_path):
    from tfod_seg.engines.garden.train import train

    # One class more (the records' ids must stay valid), learning rate 0: after training the
    # restored weights are still exactly the source checkpoint's, and the heads are new.
    cfg = write_tiny_config(str(tmp_path / "transfer.yaml"), tiny_trained_model.train_records,
                            tiny_trained_model.val_records, tiny_trained_model.num_classes + 1, {
                                "trainer.optimizer_config.learning_rate.cosine.initial_learning_rate": 0.0,
                                "trainer.optimizer_config.warmup.linear.warmup_learning_rate": 0.0,
                                "trainer.train_steps": 2, "trainer.steps_per_loop": 1,
                                "trainer.summary_interval": 1,
                            })
    result = train(cfg, str(tmp_path / "new"), strategy="cpu", init_checkpoint=tiny_trained_model.model_dir)
    source = tiny_trained_model.result.checkpoint
    new = result.checkpoint
    for prefix in ("backbone/", "decoder/"):
        old_w, new_w = _ckpt_values(source, prefix), _ckpt_values(new, prefix)
        assert old_w.keys() == new_w.keys()
        assert all((old_w[k] == new_w[k]).all() for k in old_w), prefix
    old_rpn, new_rpn = _ckpt_values(source, "rpn_head/"), _ckpt_values(new, "rpn_head/")
    assert any(not (old_rpn[k] == new_rpn[k]).all() for k in old_rpn)
    shapes_old = {k: v.shape for k, v in _ckpt_values(source, "detection_head/").items()}
    shapes_new = {k: v.shape for k, v in _ckpt_values(new, "detection_head/").items()}
    assert shapes_old != shapes_new  # class-specific layers follow the new number of classes


def test_bad_init_checkpoint_is_a_clear_error(tiny_trained_model, tmp_path):
    from tfod_seg.engines.garden.train import train

    with pytest.raises(EngineError, match="--checkpoint"):
        train(tiny_trained_model.config, str(tmp_path / "m"), strategy="cpu", init_checkpoint=str(tmp_path / "nope"))
