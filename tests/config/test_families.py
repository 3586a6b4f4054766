"""Faster R-CNN → Mask R-CNN for every TF2 zoo feature-extractor family and resizer, the target
hardware table both ways, and text-format details surviving generation."""

from pathlib import Path

import pytest

from tfod_seg.config.checks import check_config
from tfod_seg.config.families import FAMILIES, TFOD_MASK_HEAD
from tfod_seg.config.generate import generate_config
from tfod_seg.config.targets import TFOD_TPU_ONLY
from tfod_seg.errors import ConfigError
from tfod_seg.pbtxt import PbtxtDocument
from tests.config.zoo_shaped import CASES, EXTRACTORS, write_zoo_config, zoo_faster_rcnn

MP = "model.faster_rcnn.second_stage_box_predictor.mask_rcnn_box_predictor"


def _gen(records, tmp_path, template, name="out.config", **kw):
    return generate_config(template, label_map=records["label_map"], train=records["train"], val=records["val"],
                           model_dir=str(tmp_path / "model"), out=str(tmp_path / name), steps=1000, **kw)


def test_every_zoo_extractor_has_a_family():
    assert sorted(EXTRACTORS) == sorted(FAMILIES)


@pytest.mark.parametrize("extractor, resizer", CASES)
def test_faster_rcnn_becomes_complete_mask_rcnn(records, tmp_path, extractor, resizer):
    out = _gen(records, tmp_path, write_zoo_config(tmp_path, extractor, resizer), batch_size=8)
    doc = PbtxtDocument.load(out)
    assert doc.get("model.faster_rcnn.number_of_stages") == 3
    assert doc.get(f"{MP}.predict_instance_masks") is True
    for key in ("mask_height", "mask_width", "mask_prediction_conv_depth", "mask_prediction_num_conv_layers"):
        assert doc.get(f"{MP}.{key}") == TFOD_MASK_HEAD[key]
    assert doc.get(f"{MP}.conv_hyperparams.op") == "CONV"
    assert doc.get(f"{MP}.conv_hyperparams.initializer.truncated_normal_initializer.stddev") == 0.01
    assert doc.get("model.faster_rcnn.second_stage_mask_prediction_loss_weight") == 4.0
    assert doc.get("model.faster_rcnn.resize_masks") is False
    text = Path(out).read_text()
    assert f"# Mask R-CNN: {FAMILIES[extractor].name} ({extractor}); added number_of_stages: 3, " \
           "predict_instance_masks: true, mask_height: 33" in text
    problems = check_config(out)
    assert [p for p in problems if p.severity == "error"] == [], problems
    assert not [p for p in problems if "mask" in p.field], problems  # no mask-head warnings either


def test_template_mask_head_is_kept(records, tmp_path):
    src = tmp_path / "t.config"
    src.write_text(zoo_faster_rcnn("faster_rcnn_resnet50_keras", "fixed").replace(
        "        use_dropout: false", "        mask_height: 15\n        use_dropout: false"))
    doc = PbtxtDocument.load(_gen(records, tmp_path, str(src)))
    assert doc.get(f"{MP}.mask_height") == 15  # the template's value stays
    assert doc.get(f"{MP}.mask_width") == 33


def test_text_format_details_round_trip(records, tmp_path):
    out = _gen(records, tmp_path, write_zoo_config(tmp_path, "faster_rcnn_resnet50_fpn_keras", "keep_aspect"),
               batch_size=64)
    text = Path(out).read_text()
    assert "  batch_size: 1;\n" in text                  # eval_config's ';' separator kept
    assert "warmup_learning_rate: .013333\n" in text      # an untouched '.0x' float kept as written
    assert "anchor_scale: 4.0  # the FPN paper uses 8\n" in text  # trailing comments kept
    assert "          decay: 0.997,\n" in text            # ',' separators kept
    assert "initial_crop_size: 14  # the paper crops 7x7\n" in text
    doc = PbtxtDocument.load(out)
    assert doc.get("eval_config.batch_size") == 1
    assert doc.get("train_config.optimizer.momentum_optimizer.learning_rate.cosine_decay_learning_rate."
                   "learning_rate_base") == pytest.approx(0.04)


def test_edited_values_keep_separators_and_comments(records, tmp_path):
    src = write_zoo_config(tmp_path, "faster_rcnn_resnet101_keras", "fixed")
    out = _gen(records, tmp_path, src, overrides=["eval_config.batch_size=2"], target="tpu")
    text = Path(out).read_text()
    assert "  batch_size: 2;\n" in text
    assert "use_bfloat16: true  # works only on TPUs" in text


# -- target hardware: both ways ----------------------------------------------------------------
@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_target_cpu_gpu_clears_tpu_only_fields(records, tmp_path, target):
    src = write_zoo_config(tmp_path, "faster_rcnn_resnet50_fpn_keras", "keep_aspect", tpu=True)
    out = _gen(records, tmp_path, src, target=target)
    doc = PbtxtDocument.load(out)
    for field in TFOD_TPU_ONLY:
        assert doc.get(field) is False, field
    for field in ("train_config.sync_replicas", "train_config.replicas_to_aggregate"):
        assert not doc.has(field)
    text = Path(out).read_text()
    assert "use_bfloat16: false  # works only on TPUs" in text  # the line (and its comment) stays, cleared
    assert f"# target {target}: TPU-only fields cleared (set false): use_static_shapes" in text
    assert [p for p in check_config(out) if "TPU" in p.message] == []


def test_target_tpu_sets_tpu_fields(records, tmp_path):
    src = write_zoo_config(tmp_path, "faster_rcnn_resnet50_keras", "keep_aspect", tpu=False)
    text = Path(src).read_text().replace("pad_to_max_dimension: true", "pad_to_max_dimension: false")
    Path(src).write_text(text)
    out = _gen(records, tmp_path, src, target="tpu")
    doc = PbtxtDocument.load(out)
    for field in TFOD_TPU_ONLY:
        assert doc.get(field) is True, field
    assert doc.get("train_config.unpad_groundtruth_tensors") is False
    assert doc.get("model.faster_rcnn.image_resizer.keep_aspect_ratio_resizer.pad_to_max_dimension") is True
    # checked against the strategy train will use: clean on a TPU, warned about otherwise
    assert [p for p in check_config(out, strategy="tpu") if p.severity == "warning" and "TPU" in p.message] == []
    warned = {p.field for p in check_config(out) if p.severity == "warning" and "TPU" in p.message}
    assert warned == set(TFOD_TPU_ONLY)


def test_default_target_is_gpu_and_follows_strategy(records, tmp_path):
    src = write_zoo_config(tmp_path, "faster_rcnn_resnet152_keras", "fixed", tpu=True)
    doc = PbtxtDocument.load(_gen(records, tmp_path, src))
    assert doc.get("train_config.use_bfloat16") is False
    assert "# target gpu (default; --target cpu|gpu|tpu to change)" in doc.dump()
    doc = PbtxtDocument.load(_gen(records, tmp_path, src, strategy="tpu", name="t.config"))
    assert doc.get("train_config.use_bfloat16") is True
    assert "# target tpu (from --strategy tpu;" in doc.dump()


def test_check_warns_on_tpu_fields_without_tpu(records, tmp_path):
    out = _gen(records, tmp_path, write_zoo_config(tmp_path, "faster_rcnn_resnet50_keras", "fixed"))
    doc = PbtxtDocument.load(out)
    doc.set("train_config.use_bfloat16", True)
    doc.dump(out)
    hits = [p for p in check_config(out) if p.field == "train_config.use_bfloat16"]
    assert hits and hits[0].severity == "warning" and "`tfod-seg train --strategy auto` does not run on a TPU" \
        in hits[0].message


@pytest.mark.parametrize("extractor, match", [
    ("faster_rcnn_resnet50", "TF1 \\(slim\\) feature extractor .* use 'faster_rcnn_resnet50_keras'"),
    ("ssd_mobilenet_v2_keras", "not a TF2 zoo Faster R-CNN feature extractor"),
])
def test_unsupported_extractors(records, tmp_path, extractor, match):
    src = tmp_path / "x.config"
    src.write_text(zoo_faster_rcnn("faster_rcnn_resnet50_keras", "fixed").replace(
        "'faster_rcnn_resnet50_keras'", f"'{extractor}'"))
    with pytest.raises(ConfigError, match=match):
        _gen(records, tmp_path, str(src))


def test_cli_target_and_check_strategy(records, tmp_path, capsys):
    from tfod_seg.cli import main

    src = write_zoo_config(tmp_path, "faster_rcnn_resnet50_fpn_keras", "fixed")
    out = str(tmp_path / "c.config")
    assert main(["config", "--template", src, "--label-map", records["label_map"], "--train", records["train"],
                 "--val", records["val"], "--model-dir", str(tmp_path / "m"), "--out", out, "--batch-size", "8",
                 "--strategy", "multi_worker"]) == 0
    assert "# target gpu (from --strategy multi_worker;" in Path(out).read_text()
    capsys.readouterr()
    assert main(["config", "--check", out, "--strategy", "tpu"]) == 0  # warnings only
    err = capsys.readouterr().err
    assert "warning: model.faster_rcnn.use_static_shapes: is not true but the job runs on a TPU" in err
    with pytest.raises(ConfigError, match="--strategy must be one of mirrored, one_device"):
        generate_config("garden_maskrcnn_mobilenet_512", label_map=records["label_map"], train=records["train"],
                        val=records["val"], model_dir="m", out=str(tmp_path / "g.yaml"), strategy="gpu")
