"""Configs, label maps and records on a URL: generated and checked through `tfod_seg.io`
(TensorFlow's in-memory ``ram://`` filesystem stands in for ``gs://``)."""

import json
import uuid

import pytest

from tfod_seg.config.checks import check_config
from tfod_seg.config.generate import generate_config
from tfod_seg import io
from tests.config.zoo_shaped import zoo_faster_rcnn


@pytest.fixture
def ram_records():
    root = f"ram://config-remote-{uuid.uuid4().hex}/records"
    io.makedirs(root)
    io.atomic_write_text(f"{root}/label_map.pbtxt", "item {\n  id: 1\n  name: 'a'\n}\nitem {\n  id: 2\n  name: 'b'\n}\n")
    for name in ("train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord", "val-00000-of-00001.tfrecord"):
        io.atomic_write_bytes(f"{root}/{name}", b"")
    report = {"mask_type": "png", "num_classes": 2, "splits": {"train": {"images": 40}, "val": {"images": 8}}}
    io.atomic_write_text(f"{root}/report.json", json.dumps(report))
    return root


def test_tfod_config_on_ram_urls(ram_records):
    root = ram_records.rsplit("/", 1)[0]
    io.atomic_write_text(f"{root}/zoo.config", zoo_faster_rcnn("faster_rcnn_resnet50_fpn_keras", "fixed"))
    out = generate_config(f"{root}/zoo.config", label_map=f"{ram_records}/label_map.pbtxt",
                          train=f"{ram_records}/train-*.tfrecord", val=f"{ram_records}/val-*.tfrecord",
                          model_dir=f"{root}/model", out=f"{root}/p.config", batch_size=4, steps=100)
    assert out == f"{root}/p.config" and io.isfile(out)
    text = io.read_text(out)
    assert f'input_path: "{ram_records}/train-*.tfrecord"' in text
    assert [p for p in check_config(out) if p.severity == "error"] == []
    # a remote glob is really listed: one that matches nothing is an error naming it
    bad = f"{root}/bad.config"
    io.atomic_write_text(bad, text.replace("val-*.tfrecord", "nope-*.tfrecord"))
    hits = [p for p in check_config(bad) if "matches no file" in p.message]
    assert hits and hits[0].field == "eval_input_reader.tf_record_input_reader.input_path"
    assert f"{ram_records}/nope-*.tfrecord" in hits[0].message


def test_garden_config_on_ram_urls(ram_records):
    from tfod_seg.config.garden import load_experiment

    root = ram_records.rsplit("/", 1)[0]
    out = generate_config("garden_maskrcnn_mobilenet_512", label_map=f"{ram_records}/label_map.pbtxt",
                          train=f"{ram_records}/train-*.tfrecord", val=f"{ram_records}/val-*.tfrecord",
                          model_dir=f"{root}/model", out=f"{root}/g.yaml", batch_size=4, steps=100)
    cfg = load_experiment(out)[1]
    assert cfg.task.model.num_classes == 3 and cfg.task.validation_data.num_examples == 8  # report.json on ram://
    assert [p for p in check_config(out) if p.severity == "error"] == []
