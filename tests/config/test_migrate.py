"""`config --migrate`: TFOD2 pipeline.config → Model Garden Mask R-CNN experiment, for every
zoo-shaped family; the result checks clean, lists what has no equivalent, and trains."""

from pathlib import Path

import pytest

from tfod_seg.cli import main
from tfod_seg.config.checks import check_config
from tfod_seg.config.garden import load_experiment
from tfod_seg.config.generate import generate_config
from tfod_seg.config.migrate import migrate_config
from tests.config.zoo_shaped import CASES, write_zoo_config


def _tfod_config(records, tmp_path, extractor, resizer, **kw):
    src = write_zoo_config(tmp_path, extractor, resizer)
    return generate_config(src, label_map=records["label_map"], train=records["train"], val=records["val"],
                           model_dir=str(tmp_path / "m"), out=str(tmp_path / "p.config"), steps=1000, batch_size=8,
                           **kw)


@pytest.mark.parametrize("extractor, resizer", CASES)
def test_migrate_every_family_checks_clean(records, tmp_path, extractor, resizer):
    src = _tfod_config(records, tmp_path, extractor, resizer)
    result = migrate_config(src, str(tmp_path / "g.yaml"), target="gpu")
    name, cfg = load_experiment(result.out)
    m = cfg.task.model
    assert name == "maskrcnn_resnetfpn_coco"
    assert m.num_classes == 4 and m.include_mask is True
    depth = {"50": 50, "101": 101, "152": 152}.get(extractor.split("resnet")[-1].split("_")[0], 152)
    assert m.backbone.resnet.model_id == depth
    fpn = "fpn" in extractor
    assert m.decoder.type == ("fpn" if fpn else "identity")
    assert (m.min_level, m.max_level) == ((2, 6) if fpn else (4, 4))
    assert list(m.input_size) == [640, 640, 3]
    assert cfg.task.train_data.input_path == records["train"]
    assert cfg.task.validation_data.input_path == records["val"]
    assert cfg.task.train_data.global_batch_size == 8 and cfg.trainer.train_steps == 1000
    assert cfg.task.train_data.parser.aug_rand_hflip is True
    lr = cfg.trainer.optimizer_config
    assert lr.learning_rate.type == "cosine" and lr.learning_rate.cosine.decay_steps == 1000
    assert lr.warmup.linear.warmup_steps == 80
    assert lr.optimizer.sgd.momentum == 0.9 and lr.optimizer.sgd.global_clipnorm == 10.0
    assert m.detection_generator.max_num_detections == 300 and m.detection_generator.nms_iou_threshold == 0.6
    assert m.roi_generator.num_proposals == 300 and cfg.task.losses.mask_weight == 4.0
    assert m.mask_head.num_convs == 4
    assert cfg.runtime.mixed_precision_dtype == "float16"  # --target gpu
    text = Path(result.out).read_text()
    assert "train_config.data_augmentation_options.random_adjust_hue: no Model Garden Mask R-CNN equivalent" in text
    assert "model.faster_rcnn.second_stage_post_processing.batch_non_max_suppression.max_detections_per_class" \
        in result.unmapped
    assert all(f"#   {u}" in text for u in result.unmapped)
    if "inception" in extractor:
        assert "Inception-ResNet-v2 has no Model Garden backbone; nearest: ResNet-152" in text
    problems = check_config(result.out)
    assert [p for p in problems if p.severity == "error"] == [], problems


def test_migrate_cli_lists_unmapped_fields(records, tmp_path, capsys):
    src = _tfod_config(records, tmp_path, "faster_rcnn_resnet50_fpn_keras", "fixed")
    out = tmp_path / "g.yaml"
    assert main(["config", "--migrate", src, "--out", str(out), "--target", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (Model Garden maskrcnn_resnetfpn_coco)" in printed
    assert "  no Model Garden equivalent: model.faster_rcnn.feature_extractor.batch_norm_trainable" in printed
    assert f"{out}: OK" in printed
    assert load_experiment(str(out))[1].runtime.mixed_precision_dtype == "float32"
    assert main(["config", "--migrate", src, "--out", str(out), "--train", "x"]) == 2
    assert "--migrate takes the input paths" in capsys.readouterr().err
    assert main(["config", "--migrate", src, "--check", str(out)]) == 2
    assert "give either --check FILE or --migrate PIPELINE, not both" in capsys.readouterr().err
    assert main(["config", "--migrate", src, "--out", str(tmp_path / "g.config")]) == 2
    assert "the file is a Model Garden experiment; give it a .yaml or .yml name" in capsys.readouterr().err
    assert not (tmp_path / "g.config").exists()


@pytest.mark.slow
def test_migrated_config_trains_two_steps(tmp_path, capsys):
    """TFOD2 ResNet-50 FPN Faster R-CNN → Mask R-CNN → Model Garden → `tfod-seg train`, 2 steps."""
    import os

    from tfod_seg.annotations.labelme import read_labelme
    from tfod_seg.demo.shapes import generate_shapes_dataset
    from tfod_seg.records.convert import convert_dataset

    summary = generate_shapes_dataset(str(tmp_path / "labelme"), num_images=8, image_size=64, seed=3)
    rec = tmp_path / "records"
    convert_dataset(read_labelme(str(tmp_path / "labelme")), rec, label_map=summary["label_map"], val_fraction=0.25,
                    seed=0, workers=1)
    src = write_zoo_config(tmp_path, "faster_rcnn_resnet50_fpn_keras", "fixed", size=64, tpu=True)
    tfod = generate_config(src, label_map=str(rec / "label_map.pbtxt"), train=str(rec / "train-*.tfrecord"),
                           val=str(rec / "val-*.tfrecord"), model_dir=str(tmp_path / "m"),
                           out=str(tmp_path / "p.config"), batch_size=2, steps=2, augment="flip",
                           overrides=["model.faster_rcnn.first_stage_max_proposals=32",
                                      "+model.faster_rcnn.second_stage_batch_size=16"])
    out = str(tmp_path / "g.yaml")
    assert main(["config", "--migrate", tfod, "--out", out, "--target", "cpu"]) == 0
    assert f"{out}: OK" in capsys.readouterr().out
    m = load_experiment(out)[1].task.model
    assert (m.roi_generator.num_proposals, m.roi_sampler.num_sampled_rois) == (32, 16)
    model_dir = str(tmp_path / "run")
    assert main(["train", "--pipeline_config_path", out, "--model_dir", model_dir, "--strategy", "cpu"]) == 0
    assert any(f.startswith("ckpt-2") for f in os.listdir(model_dir))


def test_migrate_raw_faster_rcnn_and_flags_it_does_not_take(records, tmp_path, capsys):
    src = write_zoo_config(tmp_path, "faster_rcnn_resnet152_fpn_keras", "keep_aspect", size=1024)
    result = migrate_config(src, str(tmp_path / "g.yaml"), label_map=records["label_map"], target="tpu")
    cfg = load_experiment(result.out)[1]
    assert cfg.task.model.include_mask is True and cfg.task.model.num_classes == 4
    assert cfg.runtime.mixed_precision_dtype == "bfloat16" and cfg.runtime.distribution_strategy == "tpu"
    assert ("(Faster R-CNN: no mask head)", "include_mask: true, Model Garden's default mask head") in result.approximate
    assert any("second_stage_batch_size (TFOD2 default 64)" in f for f, _ in result.mapped)
    assert cfg.task.model.roi_sampler.num_sampled_rois == 64
    # its placeholders are still placeholders: --check says so
    fields = {p.field for p in check_config(result.out) if p.severity == "error"}
    assert "task.train_data.input_path" in fields
    assert main(["config", "--migrate", src, "--out", str(tmp_path / "h.yaml"), "--batch-size", "4"]) == 2
    assert "drop --batch-size" in capsys.readouterr().err


@pytest.mark.parametrize("template", ["tfod_mask_rcnn_resnet50_fpn_640", "tfod_mask_rcnn_resnet101_1024",
                                      "tfod_mask_rcnn_inception_resnet_v2_1024"])
def test_migrate_shipped_tfod_templates(records, tmp_path, template):
    src = generate_config(template, label_map=records["label_map"], train=records["train"], val=records["val"],
                          model_dir="m", out=str(tmp_path / "p.config"), steps=1000, batch_size=8)
    result = migrate_config(src, str(tmp_path / "g.yaml"))
    assert load_experiment(result.out)[1].task.model.mask_head.num_convs == 4
    assert [p for p in check_config(result.out) if p.severity == "error"] == []
