"""check_config: each cross-field problem is found and names the field and the file."""

import json
from pathlib import Path

import pytest

from tfod_seg.cli import main
from tfod_seg.config.checks import check_config
from tfod_seg.config.generate import generate_config
from tfod_seg.pbtxt import PbtxtDocument

TFOD = "tfod_mask_rcnn_resnet50_fpn_640"
CK = "train_config.optimizer.momentum_optimizer.learning_rate.cosine_decay_learning_rate"


@pytest.fixture
def tfod_config(records, tmp_path):
    return generate_config(TFOD, label_map=records["label_map"], train=records["train"], val=records["val"],
                           model_dir=str(tmp_path / "m"), out=str(tmp_path / "p.config"), steps=1000)


def test_generated_config_is_clean(tfod_config):
    assert [p for p in check_config(tfod_config) if p.severity == "error"] == []


@pytest.mark.parametrize("edit, field, text", [
    (lambda d: d.set("model.faster_rcnn.num_classes", 5), "model.faster_rcnn.num_classes", "expected 3"),
    (lambda d: d.remove("model.faster_rcnn.number_of_stages"), "model.faster_rcnn.number_of_stages", "needs 3"),
    (lambda d: d.set("model.faster_rcnn.second_stage_box_predictor.mask_rcnn_box_predictor.predict_instance_masks", False),
     "model.faster_rcnn.second_stage_box_predictor.mask_rcnn_box_predictor.predict_instance_masks", "without masks"),
    (lambda d: d.set("eval_input_reader.load_instance_masks", False), "eval_input_reader.load_instance_masks", "BOTH"),
    (lambda d: d.set("eval_input_reader.mask_type", "NUMERICAL_MASKS"), "eval_input_reader.mask_type",
     "written with 'png' masks (report.json): expected PNG_MASKS"),
    (lambda d: d.remove("train_input_reader.mask_type"), "train_input_reader.mask_type", "defaults to NUMERICAL_MASKS"),
    (lambda d: d.remove("eval_config.metrics_set[1]"), "eval_config.metrics_set", "lacks 'coco_mask_metrics'"),
    (lambda d: d.set("eval_config.eval_instance_masks", False), "eval_config.eval_instance_masks", "not true"),
    (lambda d: d.set_all("train_input_reader.tf_record_input_reader.input_path", ["/nope/train-*.tfrecord"]),
     "train_input_reader.tf_record_input_reader.input_path", "matches no file"),
    (lambda d: d.set("train_config.fine_tune_checkpoint", "/nope/ckpt-0"), "train_config.fine_tune_checkpoint",
     "not found"),
    (lambda d: d.set(f"{CK}.warmup_steps", 1000), f"{CK}.warmup_steps", "not smaller than"),
    (lambda d: d.set(f"{CK}.total_steps", 500), f"{CK}.total_steps", "ends early"),
    (lambda d: d.set("train_config.batch_size", 64), "train_config.batch_size", "larger than the training set (40"),
])
def test_tfod_problems(tfod_config, edit, field, text):
    doc = PbtxtDocument.load(tfod_config)
    edit(doc)
    doc.dump(tfod_config)
    problems = check_config(tfod_config)
    hits = [p for p in problems if p.field == field and text in p.message]
    assert hits, problems
    assert str(hits[0]).startswith(f"{tfod_config}:")
    assert field in str(hits[0])


def test_explicit_label_map_and_report(tfod_config, tmp_path):
    from tests.config.conftest import make_records

    other = make_records(tmp_path / "other", names=("a", "b", "c", "d", "e"), mask_type="numerical")
    probs = check_config(tfod_config, label_map=other["label_map"], report=json.loads(Path(other["report"]).read_text()))
    msgs = {p.field: p.message for p in probs}
    assert "expected 5" in msgs["model.faster_rcnn.num_classes"]
    assert "expected NUMERICAL_MASKS" in msgs["train_input_reader.mask_type"]


def test_garden_problems(records, tmp_path):
    out = generate_config("garden_maskrcnn_mobilenet_512", label_map=records["label_map"], train=records["train"],
                          val=records["val"], model_dir=str(tmp_path / "m"), out=str(tmp_path / "g.yaml"), steps=200,
                          overrides=["task.model.num_classes=7", "task.model.include_mask=false",
                                     "task.init_checkpoint=/nope/ckpt", "task.model.input_size=[500, 500, 3]",
                                     "task.train_data.input_path=/nope/*.tfrecord",
                                     "trainer.optimizer_config.warmup.linear.warmup_steps=300"])
    probs = check_config(out, label_map=records["label_map"], report=records["report"])
    fields = {p.field: p.message for p in probs}
    assert "expected 4 (Model Garden counts the background)" in fields["task.model.num_classes"]
    assert "without masks" in fields["task.model.include_mask"]
    assert "not found" in fields["task.init_checkpoint"]
    assert "multiple of 2**max_level = 64" in fields["task.model.input_size"]
    assert "matches no file" in fields["task.train_data.input_path"]
    assert "not smaller than trainer.train_steps 200" in fields["trainer.optimizer_config.warmup.linear.warmup_steps"]
    assert all(str(p).startswith(out) for p in probs)


def test_cli_config_and_check(records, tmp_path, capsys):
    out = tmp_path / "c.config"
    rc = main(["config", "--template", TFOD, "--label-map", records["label_map"], "--train", records["train"],
               "--val", records["val"], "--model-dir", str(tmp_path / "m"), "--out", str(out), "--steps", "300"])
    assert rc == 0 and out.exists()
    assert f"{out}: OK" in capsys.readouterr().out
    doc = PbtxtDocument.load(out)
    doc.set("model.faster_rcnn.num_classes", 9)
    doc.dump(out)
    assert main(["config", "--check", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{out}:" in err and "model.faster_rcnn.num_classes: is 9" in err
    # a user mistake: one line, exit 2, no traceback
    assert main(["config", "--template", TFOD, "--out", str(out)]) == 2
    assert "error: missing --label-map, --train, --val, --model-dir" in capsys.readouterr().err
    # --check reads the file as it is: generation flags are refused, not ignored
    assert main(["config", "--check", str(out), "--steps", "5", "--set", "x=1"]) == 2
    assert f"error: --check validates {out} as it is (it takes --label-map, --report, --strategy); drop --steps, " \
        "--set" in capsys.readouterr().err


def test_cli_templates_lists_every_template(capsys):
    from tfod_seg.config.generate import template_paths

    assert main(["templates"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(template_paths())
    assert any(l.startswith("garden_maskrcnn_resnet50_fpn_640 ") and "garden" in l for l in lines)
    assert any(l.startswith("tfod_mask_rcnn_inception_resnet_v2_1024 ") and "tfod" in l for l in lines)


def test_garden_sampler_sizes(records, tmp_path):
    out = generate_config("garden_maskrcnn_mobilenet_512", label_map=records["label_map"], train=records["train"],
                          val=records["val"], model_dir=str(tmp_path / "m"), out=str(tmp_path / "g.yaml"), steps=200,
                          overrides=["task.model.roi_generator.num_proposals=300",
                                     "task.model.roi_sampler.num_sampled_rois=512",
                                     "task.model.mask_sampler.num_sampled_masks=600"])
    fields = {p.field: p.message for p in check_config(out) if p.severity == "error"}
    assert "512 is more than the 400 boxes it samples from" in fields["task.model.roi_sampler.num_sampled_rois"]
    assert "600 is more than roi_sampler.num_sampled_rois 512" in fields["task.model.mask_sampler.num_sampled_masks"]
