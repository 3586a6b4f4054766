"""Model Garden experiment YAML: strict loading, error text, and a dump that Model Garden's own
`--config_file` path (official.common.flags + train_utils.parse_configuration) accepts."""

import textwrap

import pytest

from tfod_seg.config import garden
from tfod_seg.errors import ConfigError

EXP = "maskrcnn_resnetfpn_coco"


def _write(tmp_path, body, name="exp.yaml", header=f"# tfod-seg experiment: {EXP}\n"):
    p = tmp_path / name
    p.write_text(header + textwrap.dedent(body))
    return p


def test_load_applies_yaml_and_overrides(tmp_path):
    p = _write(tmp_path, """\
        task:
          model:
            num_classes: 4
            input_size: [256, 256, 3]
          train_data:
            input_path: 'out/train-*.tfrecord'
            global_batch_size: 2
        trainer:
          train_steps: 50
          optimizer_config:
            learning_rate:
              stepwise:
                values: [1.0e-2, 1.0e-3, 1.0e-4]
        """)
    name, cfg = garden.load_experiment(p, overrides={"trainer.train_steps": 77, "task": {"per_category_metrics": True}})
    assert name == EXP
    assert cfg.task.model.num_classes == 4
    assert list(cfg.task.model.input_size) == [256, 256, 3]
    assert cfg.task.train_data.input_path == "out/train-*.tfrecord"
    assert cfg.task.train_data.global_batch_size == 2
    assert cfg.trainer.train_steps == 77  # override wins over the file
    assert cfg.task.per_category_metrics is True
    assert list(cfg.trainer.optimizer_config.learning_rate.stepwise.values) == [1e-2, 1e-3, 1e-4]
    # untouched fields keep the registered experiment's defaults
    assert cfg.task.model.include_mask is True


def test_missing_header_is_an_error(tmp_path):
    p = _write(tmp_path, "task: {}\n", header="# some other comment\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml: no '# tfod-seg experiment: <name>' header"):
        garden.load_experiment(p)


@pytest.mark.parametrize(
    "body, key, line, nearest",
    [
        ("task:\n  model:\n    nm_classes: 3\n", "task.model.nm_classes", 4, "task.model.num_classes"),
        ("trainer:\n  train_step: 3\n", "trainer.train_step", 3, "trainer.train_steps"),
        # below a field that is None by default (Model Garden itself would accept this silently)
        ("task:\n  train_data:\n    parser:\n      aug_type:\n        tipe: randaug\n",
         "task.train_data.parser.aug_type.tipe", 6, "task.train_data.parser.aug_type.type"),
    ],
)
def test_unknown_key_names_file_line_and_nearest(tmp_path, body, key, line, nearest):
    p = _write(tmp_path, body)
    with pytest.raises(ConfigError) as ei:
        garden.load_experiment(p)
    msg = str(ei.value)
    assert f"exp.yaml:{line}: unknown key '{key}'" in msg
    assert "nearest valid keys:" in msg and nearest in msg


def test_unknown_override_key(tmp_path):
    p = _write(tmp_path, "task: {}\n")
    with pytest.raises(ConfigError, match=r"\(overrides\): unknown key 'task.model.includ_mask'.*task.model.include_mask"):
        garden.load_experiment(p, overrides={"task.model.includ_mask": False})


def test_unknown_experiment_lists_nearest(tmp_path):
    p = _write(tmp_path, "", header="# tfod-seg experiment: maskrcnn_resnetfpn_cocoo\n")
    with pytest.raises(ConfigError, match=r"unknown Model Garden experiment 'maskrcnn_resnetfpn_cocoo'.*maskrcnn_resnetfpn_coco"):
        garden.load_experiment(p)


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    p = _write(tmp_path, "task:\n  model: [1, 2\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml:\d+:\d+: invalid YAML"):
        garden.load_experiment(p)


def test_validation_failure_is_config_error(tmp_path):
    # maskrcnn_spinenet_coco restricts task.model.min_level == backbone.spinenet.min_level
    p = _write(tmp_path, "task:\n  model:\n    min_level: 2\n", header="# tfod-seg experiment: maskrcnn_spinenet_coco\n")
    with pytest.raises(ConfigError, match="validation"):
        garden.load_experiment(p)


def test_dump_round_trip_and_official_flags_accept_it(tmp_path):
    cfg = garden.base_experiment(EXP)
    garden.apply_overrides(cfg, {
        "task.model.num_classes": 5,
        "task.model.backbone": {"type": "resnet", "resnet": {"model_id": 18}},
        "task.train_data.input_path": "/data/train-*.tfrecord",
        "task.validation_data.input_path": "/data/val-*.tfrecord",
        "task.annotation_file": "",
        "trainer.train_steps": 123,
        "runtime.mixed_precision_dtype": "float32",
    }, source="test", experiment=EXP)
    out = garden.dump_experiment(cfg, tmp_path / "gen.yaml", EXP, header=["made by a test"])
    text = (tmp_path / "gen.yaml").read_text()
    assert text.startswith("# made by a test\n# tfod-seg experiment: maskrcnn_resnetfpn_coco\n")
    assert "num_classes: 5" in text and "l2_weight_decay" not in text  # only the differences
    assert garden.read_header(out) == EXP

    name, back = garden.load_experiment(out)
    assert name == EXP and back.as_dict() == cfg.as_dict()

    # The same file through Model Garden's own flag parsing (what official.vision.train does).
    from absl import flags
    from official.common import flags as tfm_flags
    from official.core import train_utils

    if "experiment" not in flags.FLAGS:
        tfm_flags.define_flags()
    fv = flags.FLAGS
    saved = {k: fv[k].value for k in ("experiment", "config_file", "mode", "model_dir")}
    try:
        fv(["train", f"--experiment={EXP}", f"--config_file={out}", "--mode=train", f"--model_dir={tmp_path}/m"])
        params = train_utils.parse_configuration(fv, print_return=False)
    finally:
        for k, v in saved.items():
            fv[k].value = v
    assert params.task.model.num_classes == 5
    assert params.task.model.backbone.resnet.model_id == 18
    assert params.trainer.train_steps == 123
    assert params.task.annotation_file == ""


def test_full_dump_is_also_loadable(tmp_path):
    cfg = garden.base_experiment("maskrcnn_mobilenet_coco")
    p = garden.dump_experiment(cfg, tmp_path / "full.yaml", "maskrcnn_mobilenet_coco", full=True)
    _, back = garden.load_experiment(p)
    assert back.as_dict() == cfg.as_dict()


def test_nearest_keys():
    cfg = garden.base_experiment(EXP)
    assert garden.nearest_keys("task.model.num_clases", cfg)[0] == "task.model.num_classes"
    assert "trainer.train_steps" in garden.nearest_keys("train_steps", cfg)
