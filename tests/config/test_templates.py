"""Every shipped template (glob of pipelines/, so templates added later are covered): it has a
header saying what it is for and its cost, a config generated from it passes the checks, and a
Model Garden one builds a valid ExperimentConfig (model not built: too slow for the big ones)."""

import os
from pathlib import Path

import pytest

from tfod_seg.config.checks import check_config
from tfod_seg.config.generate import TEMPLATE_DIR, generate_config, template_kind, template_paths
from tfod_seg.config.templates import describe_template

TEMPLATES = template_paths()
# Scene-model (semantic segmentation) templates, garden_deeplab*, read semantic records: tests/zones/test_semantic.py.
INSTANCE_TEMPLATES = [p for p in TEMPLATES if not os.path.basename(p).startswith("garden_deeplab")]


def test_templates_are_shipped():
    names = {os.path.basename(p) for p in TEMPLATES}
    assert {"tfod_mask_rcnn_resnet50_fpn_640.config", "tfod_mask_rcnn_resnet101_1024.config",
            "tfod_mask_rcnn_inception_resnet_v2_1024.config", "garden_maskrcnn_resnet50_fpn_640.yaml",
            "garden_maskrcnn_resnet50_fpn_1024.yaml", "garden_maskrcnn_spinenet49_640.yaml",
            "garden_maskrcnn_mobilenet_512.yaml"} <= names


@pytest.mark.parametrize("template", INSTANCE_TEMPLATES, ids=[os.path.basename(p) for p in INSTANCE_TEMPLATES])
def test_template_generates_a_clean_config(template, records, tmp_path, checkpoint):
    info = describe_template(template)
    assert info.summary != "(no header comment)"
    header = " ".join(info.header).lower()
    assert "for:" in header and "cost" in header, f"{template}: header must say what it is for and its cost"

    kind = template_kind(template)
    out = tmp_path / ("out.config" if kind == "tfod" else "out.yaml")
    generate_config(template, label_map=records["label_map"], train=records["train"], val=records["val"],
                    model_dir=str(tmp_path / "model"), out=str(out), batch_size=2, steps=100,
                    checkpoint=checkpoint, checkpoint_type="backbone", augment="flip,scale")
    problems = check_config(out, label_map=records["label_map"], report=records["report"])
    assert [p for p in problems if p.severity == "error"] == [], problems
    if kind == "garden":
        from tfod_seg.config.garden import load_experiment

        name, cfg = load_experiment(out)
        cfg.validate()
        assert cfg.task.model.num_classes == 4
        assert cfg.trainer.train_steps == 100
        assert cfg.task.model.include_mask
        # the template itself loads through Model Garden's strict path
        assert load_experiment(template)[0] == name
    else:
        from tfod_seg.pbtxt import PbtxtDocument, validate_with_schema

        validate_with_schema(out)  # real schema when TFOD2 is importable (the TFOD2 environment), else no-op
        assert PbtxtDocument.load(template).dump() == Path(template).read_text()  # byte-identical round trip


def test_template_dir_is_the_repo_pipelines():
    assert os.path.basename(TEMPLATE_DIR) == "pipelines" and os.path.isdir(TEMPLATE_DIR)
