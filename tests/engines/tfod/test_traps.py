"""TFOD2 traps caught before launching (no TFOD2 needed; one test writes real TF checkpoints)."""

import json
import os

import pytest

from tfod_seg.pbtxt import PbtxtDocument
from tfod_seg.engines.tfod import traps
from tfod_seg.errors import ConfigError, EngineError

READER = """{{
  label_map_path: "{d}/label_map.pbtxt"
  {load}
  {mask_type}
  tf_record_input_reader {{ input_path: "{d}/{split}-?????-of-?????.tfrecord" }}
}}"""


def mask_config(d, *, stages="number_of_stages: 3", load="load_instance_masks: true",
                mask_type="mask_type: PNG_MASKS", eval_mask_type=None, train_extra="num_steps: 20"):
    eval_mask_type = mask_type if eval_mask_type is None else eval_mask_type
    return f"""model {{
  faster_rcnn {{
    num_classes: 2
    {stages}
    second_stage_box_predictor {{ mask_rcnn_box_predictor {{ predict_instance_masks: true }} }}
  }}
}}
train_config {{
  batch_size: 2
  {train_extra}
}}
train_input_reader {READER.format(d=d, load=load, mask_type=mask_type, split="train")}
eval_input_reader {READER.format(d=d, load=load, mask_type=eval_mask_type, split="val")}
"""


def write(tmp_path, text, report_mask_type=None):
    if report_mask_type:
        (tmp_path / "report.json").write_text(json.dumps({"mask_type": report_mask_type}))
    path = tmp_path / "pipeline.config"
    path.write_text(text)
    return str(path), PbtxtDocument.load(str(path))


@pytest.mark.parametrize(
    "kwargs, report, expected",
    [
        ({}, "png", None),
        ({"mask_type": "", "eval_mask_type": ""}, "numerical", None),  # TFOD2's default matches
        ({"stages": ""}, "png", "number_of_stages is 2 (default 2)"),
        ({"stages": "number_of_stages: 2"}, None, "set number_of_stages: 3"),
        ({"eval_mask_type": ""}, "png", "eval_input_reader.mask_type is missing, so TFOD2 decodes masks as "
                                        "NUMERICAL_MASKS, but the records' report.json says PNG masks"),
        ({"mask_type": ""}, None, "train_input_reader.mask_type is missing"),
        ({"load": ""}, "png", "train_input_reader.load_instance_masks is not true"),
        ({}, "numerical", "mask_type is PNG_MASKS but the records were written with 'numerical' masks"),
    ],
)
def test_mask_settings(tmp_path, kwargs, report, expected):
    path, doc = write(tmp_path, mask_config(tmp_path, **kwargs), report)
    if expected is None:
        traps.check_mask_settings(doc, path)
        return
    with pytest.raises(ConfigError) as e:
        traps.check_mask_settings(doc, path)
    assert expected in str(e.value)
    assert str(e.value).startswith(path + ":")  # names the file and line


def test_mask_settings_ignore_box_only_models(tmp_path):
    path, doc = write(tmp_path, "model { faster_rcnn { num_classes: 1 } }\ntrain_input_reader { }\n")
    traps.check_mask_settings(doc, path)


def _ckpt(directory, name="ckpt-3"):
    os.makedirs(directory, exist_ok=True)
    (directory / f"{name}.index").write_bytes(b"")
    (directory / f"{name}.data-00000-of-00001").write_bytes(b"")
    (directory / "checkpoint").write_text(f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')
    return str(directory / name)


def test_latest_checkpoint_from_state_file_or_highest_index(tmp_path):
    assert traps.latest_checkpoint(tmp_path) is None
    prefix = _ckpt(tmp_path / "a", "ckpt-2")
    assert traps.latest_checkpoint(tmp_path / "a") == prefix
    (tmp_path / "b").mkdir()
    for n in (1, 10, 9):
        (tmp_path / "b" / f"ckpt-{n}.index").write_bytes(b"")
    assert traps.latest_checkpoint(tmp_path / "b") == str(tmp_path / "b" / "ckpt-10")


def test_export_traps(tmp_path):
    with pytest.raises(EngineError, match="no such directory"):
        traps.check_export_checkpoint(str(tmp_path / "missing"))
    with pytest.raises(EngineError, match="no trained checkpoint"):
        traps.check_export_checkpoint(str(tmp_path))
    prefix = _ckpt(tmp_path, "ckpt-1")
    with pytest.raises(EngineError) as e:
        traps.check_export_checkpoint(str(tmp_path), read_step=lambda p: 0)
    assert "ckpt-1 is from step 0" in str(e.value) and "not bound to checkpointed values" in str(e.value)
    assert traps.check_export_checkpoint(str(tmp_path), read_step=lambda p: 20) == prefix


def test_train_step_traps(tmp_path):
    path, doc = write(tmp_path, mask_config(tmp_path))
    model_dir = str(tmp_path / "run")
    assert traps.check_train_steps(doc, path, model_dir, None) == 20  # from train_config.num_steps
    assert traps.check_train_steps(doc, path, model_dir, 50) == 50
    _ckpt(tmp_path / "run", "ckpt-4")
    with pytest.raises(EngineError) as e:
        traps.check_train_steps(doc, path, model_dir, 30, read_step=lambda p: 30)
    assert "already at step 30 (ckpt-4) and --num_train_steps is 30" in str(e.value)
    assert traps.check_train_steps(doc, path, model_dir, 31, read_step=lambda p: 30) == 31
    path0, doc0 = write(tmp_path, mask_config(tmp_path, train_extra=""))
    with pytest.raises(ConfigError, match="train_config.num_steps is 0: TFOD2's TF2 training loop then trains 0"):
        traps.check_train_steps(doc0, path0, model_dir, None)


def test_eval_traps(tmp_path):
    with pytest.raises(EngineError, match="no checkpoint to evaluate"):
        traps.check_eval_checkpoint(str(tmp_path), once=True, eval_timeout=None)
    notes = traps.check_eval_checkpoint(str(tmp_path), once=False, eval_timeout=None)
    assert "waits up to --eval_timeout (3600 s)" in notes[0] and "--once" in notes[1]
    _ckpt(tmp_path)
    assert traps.check_eval_checkpoint(str(tmp_path), once=True, eval_timeout=None) == []


DETECTION_NAMES = ["_CHECKPOINTABLE_OBJECT_GRAPH", "model/_feature_extractor_for_proposal_features/x/kernel/.ATTRIBUTES/VARIABLE_VALUE"]
CLASSIFICATION_NAMES = ["feature_extractor/conv1/kernel/.ATTRIBUTES/VARIABLE_VALUE"]


@pytest.mark.parametrize(
    "type_line, names, expected",
    [
        ('fine_tune_checkpoint_type: "detection"', DETECTION_NAMES, None),
        ('fine_tune_checkpoint_type: "classification"', CLASSIFICATION_NAMES, None),
        ('fine_tune_checkpoint_type: "classification"', DETECTION_NAMES,
         "is a detection checkpoint (variables under model/) but train_config.fine_tune_checkpoint_type is 'classification'"),
        ("", DETECTION_NAMES, "fine_tune_checkpoint_type is not set (TFOD2 then assumes 'classification')"),
        ('fine_tune_checkpoint_type: "full"', CLASSIFICATION_NAMES, "is a classification (backbone) checkpoint"),
        ('fine_tune_checkpoint_type: "detections"', DETECTION_NAMES, "expected one of classification, detection, full"),
    ],
)
def test_fine_tune_type_against_checkpoint(tmp_path, type_line, names, expected):
    prefix = _ckpt(tmp_path / "pretrained", "ckpt-0")
    text = mask_config(tmp_path, train_extra=f'num_steps: 20\n  fine_tune_checkpoint: "{prefix}"\n  {type_line}')
    path, doc = write(tmp_path, text)
    run = lambda: traps.check_fine_tune(doc, path, str(tmp_path / "run"), list_names=lambda p: names)  # noqa: E731
    if expected is None:
        run()
        return
    with pytest.raises(ConfigError) as e:
        run()
    assert expected in str(e.value)


@pytest.mark.parametrize(
    "ckpt, expected",
    [
        ("PATH_TO_BE_CONFIGURED/ckpt-0", "is the placeholder"),
        ("{d}/nothing/ckpt-0", "no such checkpoint"),
        ("{d}/pretrained", "is a directory; TFOD2 needs a checkpoint prefix (e.g. {d}/pretrained/ckpt-0)"),
        ("{d}/run/ckpt-0", "is inside --model_dir"),
    ],
)
def test_fine_tune_checkpoint_path(tmp_path, ckpt, expected):
    _ckpt(tmp_path / "pretrained", "ckpt-0")
    _ckpt(tmp_path / "run", "ckpt-0")
    ckpt = ckpt.format(d=tmp_path)
    path, doc = write(tmp_path, mask_config(tmp_path, train_extra=f'num_steps: 20 fine_tune_checkpoint: "{ckpt}"'))
    with pytest.raises(ConfigError) as e:
        traps.check_fine_tune(doc, path, str(tmp_path / "run"), list_names=lambda p: DETECTION_NAMES)
    assert expected.format(d=tmp_path) in str(e.value)


@pytest.mark.slow
def test_real_checkpoints_step_and_kind(tmp_path):
    """The TensorFlow readers on checkpoints laid out like TFOD2's (step + model/...)."""
    tf = pytest.importorskip("tensorflow")

    model = tf.Module()
    model._feature_extractor = tf.Module()
    model._feature_extractor.kernel = tf.Variable(tf.ones([2, 2]))
    step = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(step=step, model=model), str(tmp_path / "run"), 3)
    manager.save()  # TFOD2's ckpt-1, at step 0
    with pytest.raises(EngineError, match="ckpt-1 is from step 0"):
        traps.check_export_checkpoint(str(tmp_path / "run"))
    step.assign(7)
    prefix = manager.save()
    assert traps.check_export_checkpoint(str(tmp_path / "run")) == prefix
    assert traps.checkpoint_step(prefix) == 7
    assert traps.guess_checkpoint_kind(traps.checkpoint_variable_names(prefix)) == "detection"
    backbone = tf.train.Checkpoint(feature_extractor=model._feature_extractor).save(str(tmp_path / "cls" / "ckpt"))
    assert traps.guess_checkpoint_kind(traps.checkpoint_variable_names(backbone)) == "classification"
