"""Scene model: `convert --task semantic` records decode with Model Garden's segmentation
decoder to the generated truth; the garden_deeplab template generates a clean config; a few
training steps on tiny images export a scene model that `infer` and `zones --scene-model` use."""

import glob
import json
import os

import numpy as np
import pytest

from tfod_seg.cli import main
from tfod_seg.demo.streets import ZONE_CLASSES, generate_streets

SIZE = 64


@pytest.fixture(scope="module")
def streets(tmp_path_factory):
    root = tmp_path_factory.mktemp("streets")
    generate_streets(str(root / "data"), 10, size=SIZE, seed=3)
    out = str(root / "records")
    assert main(["convert", "--format", "labelme", str(root / "data" / "scene"), "--task", "semantic", "--out", out,
                 "--val-fraction", "0.3", "--allow-outside-root", "--quiet"]) == 0
    return {"root": str(root), "data": str(root / "data"), "records": out}


def _decode(path):
    import tensorflow as tf
    from official.vision.dataloaders import segmentation_input

    decoder = segmentation_input.Decoder()
    for raw in tf.data.TFRecordDataset(path):
        d = decoder.decode(raw)
        label = tf.io.decode_image(d["image/segmentation/class/encoded"], channels=1).numpy()[..., 0]
        image = tf.io.decode_image(d["image/encoded"], channels=3).numpy()
        name = tf.io.parse_single_example(raw, {"image/filename": tf.io.FixedLenFeature((), tf.string)})
        yield name["image/filename"].numpy().decode(), image, label, int(d["image/height"]), int(d["image/width"])


def test_semantic_records_decode_with_model_gardens_decoder(streets):
    from tfod_seg.demo.streets import _layout, zone_map  # the generator's own truth, per image
    from tfod_seg.labelmap import read_label_map

    lm = read_label_map(os.path.join(streets["records"], "label_map.pbtxt"))
    assert sorted(lm.names) == sorted(ZONE_CLASSES)
    report = json.load(open(os.path.join(streets["records"], "report.json")))
    assert report["task"] == "semantic" and report["num_classes"] == 5 and report["num_skipped"] == 0
    files = sorted(glob.glob(os.path.join(streets["records"], "*.tfrecord")))
    seen = 0
    for path in files:
        for name, image, label, h, w in _decode(path):
            index = int(os.path.basename(name).split("_")[1].split(".")[0])
            zones = zone_map(_layout(np.random.default_rng([3, 16, index]), SIZE))
            assert image.shape == (SIZE, SIZE, 3) and (h, w) == (SIZE, SIZE)
            for zone, truth in zones.items():
                agree = (label == lm.id_of(zone)) == truth
                assert agree.mean() > 0.97, (name, zone, agree.mean())  # polygon edges: a pixel row at most
            assert set(np.unique(label)) <= {1, 2, 3, 4}
            seen += 1
    assert seen == 10


def test_semantic_convert_refuses_instance_only_flags(streets, capsys):
    rc = main(["convert", "--format", "labelme", os.path.join(streets["data"], "scene"), "--task", "semantic",
               "--out", os.path.join(streets["root"], "x"), "--mask-type", "numerical", "--allow-outside-root"])
    assert rc == 2 and "--task semantic" in capsys.readouterr().err


def _config(streets, tmp_path, steps=4):
    out = str(tmp_path / "scene.yaml")
    rec = streets["records"]
    assert main(["config", "--template", "garden_deeplab_cpu", "--label-map", os.path.join(rec, "label_map.pbtxt"),
                 "--train", os.path.join(rec, "train-*.tfrecord"), "--val", os.path.join(rec, "val-*.tfrecord"),
                 "--model-dir", str(tmp_path / "model"), "--out", out, "--steps", str(steps), "--batch-size", "2",
                 "--image-size", str(SIZE), "--set", "task.validation_data.global_batch_size=2"]) == 0
    return out


def test_deeplab_template_generates_a_clean_config(streets, tmp_path):
    from tfod_seg.config.checks import check_config
    from tfod_seg.config.garden import load_experiment

    out = _config(streets, tmp_path, steps=100)
    rec = streets["records"]
    problems = check_config(out, label_map=os.path.join(rec, "label_map.pbtxt"))
    assert [p for p in problems if p.severity == "error"] == [], problems
    _, cfg = load_experiment(out)
    assert cfg.task.model.num_classes == 5 and cfg.trainer.train_steps == 100
    assert cfg.task.train_data.output_size == [SIZE, SIZE] and cfg.task.model.input_size == [SIZE, SIZE, 3]
    assert cfg.task.export_config.rescale_output


@pytest.mark.slow
def test_scene_model_trains_exports_and_feeds_zones(streets, tmp_path):
    from tests.zones.helpers import block, write_predictions

    config = _config(streets, tmp_path, steps=4)
    model_dir, export = str(tmp_path / "model"), str(tmp_path / "export")
    assert main(["train", "--pipeline_config_path", config, "--model_dir", model_dir]) == 0
    assert os.path.exists(os.path.join(model_dir, "ckpt-4.index"))
    metrics = str(tmp_path / "metrics.json")
    assert main(["evaluate", "--pipeline_config_path", config, "--checkpoint_dir", model_dir, "--once",
                 "--metrics_json", metrics]) == 0
    got = json.load(open(metrics))
    assert 0.0 <= got["mean_iou"] <= 1.0 and {f"iou/{i}" for i in range(5)} <= set(got)
    assert main(["export", "--pipeline_config_path", config, "--trained_checkpoint_dir", model_dir,
                 "--output_directory", export]) == 0
    info = json.load(open(os.path.join(export, "semantic.json")))
    assert info["classes"]["0"] == "background" and sorted(list(info["classes"].values())[1:]) == sorted(ZONE_CLASSES)
    images = os.path.join(streets["data"], "images")
    out = str(tmp_path / "infer")
    assert main(["infer", "--model", export, "--images", images, "--out", out, "--format", "semantic",
                 "--no-progress"]) == 0
    maps = sorted(glob.glob(os.path.join(out, "semantic", "*.png")))
    assert len(maps) == 10
    from PIL import Image

    assert np.asarray(Image.open(maps[0])).shape == (SIZE, SIZE) and np.asarray(Image.open(maps[0])).max() <= 4
    # zones from the scene model: every pixel belongs to exactly one class, so a car's fractions sum to <= 1
    res, gt = write_predictions(str(tmp_path), SIZE, SIZE, [block(SIZE, SIZE, 10, 10, 30, 20)], [1], [0.9])
    doc = json.load(open(gt))
    doc["images"][0]["file_name"] = "street_00000.png"
    json.dump(doc, open(gt, "w"))
    zones_out = str(tmp_path / "zones")
    assert main(["zones", "--scene-model", export, "--predictions", res, "--gt", gt, "--images", images,
                 "--rule", "car:no_parking>=0.3", "--out", zones_out, "--no-progress"]) == 0
    det = json.load(open(os.path.join(zones_out, "detections.json")))[0]
    assert set(det["overlaps"]) == set(ZONE_CLASSES) and sum(det["overlaps"].values()) <= 1.0 + 1e-6
    assert os.path.exists(os.path.join(zones_out, "overlays", "street_00000.png"))
