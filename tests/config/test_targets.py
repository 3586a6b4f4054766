"""--target for Model Garden experiments: precision and loop sizes set per target, and
`config --check` warning when they do not suit the strategy (both ways)."""

from pathlib import Path

import pytest

from tfod_seg.config.checks import check_config
from tfod_seg.config.garden import load_experiment
from tfod_seg.config.generate import generate_config
from tfod_seg.config.targets import GARDEN_TARGETS, resolve_target

GARDEN = "garden_maskrcnn_mobilenet_512"  # template: float32, steps_per_loop 100, checkpoints every 1000


def _gen(records, tmp_path, **kw):
    return generate_config(GARDEN, label_map=records["label_map"], train=records["train"], val=records["val"],
                           model_dir=str(tmp_path / "m"), out=str(tmp_path / "g.yaml"), steps=5000, batch_size=8, **kw)


@pytest.mark.parametrize("target", ["cpu", "gpu", "tpu"])
def test_garden_target_sets_precision_and_loops(records, tmp_path, target):
    cfg = load_experiment(_gen(records, tmp_path, target=target))[1]
    want = GARDEN_TARGETS[target]
    assert cfg.runtime.mixed_precision_dtype == want["mixed_precision"]
    assert cfg.task.train_data.dtype == cfg.task.validation_data.dtype == want["mixed_precision"]
    t = cfg.trainer
    assert (t.steps_per_loop, t.summary_interval, t.checkpoint_interval) == (
        want["steps_per_loop"], want["summary_interval"], want["checkpoint_interval"])
    assert (cfg.runtime.distribution_strategy == "tpu") == (target == "tpu")
    # Model Garden's own runner builds mirrored/one_device from num_gpus (0 = the CPU, even on a GPU machine)
    assert cfg.runtime.num_gpus == want["num_gpus"] == (1 if target == "gpu" else 0)
    assert [p for p in check_config(str(tmp_path / "g.yaml")) if "precision" in p.message or "TPU" in p.message] == []


def test_garden_without_target_keeps_template_settings(records, tmp_path):
    out = _gen(records, tmp_path)
    cfg = load_experiment(out)[1]
    assert cfg.runtime.mixed_precision_dtype == "float32" and cfg.trainer.steps_per_loop == 100
    assert "# target: the template's precision and loop intervals (give --target cpu|gpu|tpu" in Path(out).read_text()


def test_garden_loops_clamped_to_short_training(records, tmp_path):
    out = generate_config(GARDEN, label_map=records["label_map"], train=records["train"], val=records["val"],
                          model_dir="m", out=str(tmp_path / "g.yaml"), steps=40, target="tpu")
    t = load_experiment(out)[1].trainer
    assert t.steps_per_loop == 40 and t.summary_interval == 40 and t.checkpoint_interval == 40


@pytest.mark.parametrize("target, strategy, field, text", [
    ("gpu", "tpu", "runtime.mixed_precision_dtype", "is float16 but the strategy is tpu"),
    ("gpu", "tpu", "trainer.steps_per_loop", "short loops spend most of the time on host round trips"),
    ("tpu", "mirrored", "runtime.mixed_precision_dtype", "is bfloat16 but the strategy is mirrored"),
])
def test_check_warns_on_target_strategy_mismatch(records, tmp_path, target, strategy, field, text):
    out = _gen(records, tmp_path, target=target)
    hits = [p for p in check_config(out, strategy=strategy) if p.field == field]
    assert hits and hits[0].severity == "warning" and text in hits[0].message


@pytest.mark.parametrize("target, strategy, want", [
    (None, None, ("gpu", "default")), (None, "tpu", ("tpu", "from --strategy tpu")),
    (None, "mirrored", ("gpu", "from --strategy mirrored")), ("cpu", None, ("cpu", "--target")),
    ("tpu", "tpu", ("tpu", "--target")),
])
def test_resolve_target(target, strategy, want):
    assert resolve_target(target, strategy) == want
