"""inspect: checks catch broken records, statistics are right, overlays are written."""

import numpy as np
import pytest
from PIL import Image

from tests.data.fixtures import encode, labelme_dataset, photo
from tfod_seg.annotations.labelme import read_labelme
from tfod_seg.cli import main
from tfod_seg.labelmap import LabelMap
from tfod_seg.records.convert import convert_dataset
from tfod_seg.records.example import bytes_feature, float_feature, int64_feature, serialize_example
from tfod_seg.records.inspect import inspect_records
from tfod_seg.records.reader import iter_records


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("insp")
    labelme_dataset(root / "lm", n=3)
    convert_dataset(read_labelme(root / "lm"), root / "out", workers=1)
    return root / "out"


def test_clean_records_pass_and_stats(records, tmp_path):
    lm = LabelMap.from_names(["cat", "dog", "ball"])
    stats = inspect_records(str(records), label_map=lm, render=2, out_dir=str(tmp_path / "viz"))
    assert stats["num_problems"] == 0, stats["problems"]
    assert stats["images"] == 3 and stats["instances"] == 12
    assert stats["instances_per_class"] == {"ball": 3, "cat": 3, "dog": 6}
    assert sum(stats["mask_area"].values()) == 12
    assert len(stats["rendered"]) == 2
    over = np.asarray(Image.open(stats["rendered"][0]))
    assert over.shape == (64, 96, 3)
    plain = next(iter_records(str(records))).image()
    changed = np.any(over != plain, axis=-1)
    assert changed[10, 10] and not changed[2, 90]  # tinted inside the cat polygon, untouched far away


def _bad_record(path):
    h, w = 20, 30
    m255 = np.zeros((h, w), np.uint8)
    m255[2:5, 2:5] = 255
    feats = {
        "image/encoded": bytes_feature([encode(photo(w, h), "JPEG")]), "image/format": bytes_feature([b"jpeg"]),
        "image/height": int64_feature([h]), "image/width": int64_feature([w]),
        "image/filename": bytes_feature([b"bad.jpg"]), "image/source_id": bytes_feature([b"9"]),
        "image/object/bbox/xmin": float_feature([0.1, 0.5]), "image/object/bbox/xmax": float_feature([1.2, 0.4]),
        "image/object/bbox/ymin": float_feature([0.1, 0.1]), "image/object/bbox/ymax": float_feature([0.5, 0.5]),
        "image/object/class/label": int64_feature([1, 7]), "image/object/class/text": bytes_feature([b"dog", b"x"]),
        "image/object/mask": bytes_feature([encode(m255, "PNG")]),
    }
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as wr:
        wr.write(serialize_example(feats))


def test_broken_record_problems_are_listed(tmp_path, capsys):
    _bad_record(tmp_path / "bad.tfrecord")
    lm = LabelMap.from_names(["cat", "dog"])
    stats = inspect_records(str(tmp_path / "bad.tfrecord"), label_map=lm)
    text = " | ".join(p["problem"] for p in stats["problems"])
    assert "1 masks for 2 boxes" in text
    assert "box coordinates outside [0, 1]" in text
    assert "boxes [1] have ymin >= ymax or xmin >= xmax" in text
    assert "mask 0 is not binary (values [0, 255])" in text
    assert "instance 0 label 1 is 'cat' in the label map but class/text says 'dog'" in text
    assert "instance 1 label 7 is not in the label map" in text
    assert all(p["file"].endswith("bad.tfrecord") and p["source_id"] == "9" for p in stats["problems"])
    assert main(["inspect", str(tmp_path / "bad.tfrecord"), "--quiet"]) == 1
    assert "PROBLEMS:" in capsys.readouterr().out


def test_cli_inspect(records, tmp_path, capsys):
    rc = main(["inspect", str(records / "train-*.tfrecord"), "--label-map", str(records / "label_map.pbtxt"),
               "--render", "1", "--out", str(tmp_path / "v"), "--quiet", "--json", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "3 images, 12 instances" in out and "checks: all passed" in out
    assert len(list((tmp_path / "v").glob("*.png"))) == 1 and (tmp_path / "s.json").exists()
    assert main(["inspect", str(tmp_path / "none-*.tfrecord")]) == 2
    assert "no file matches" in capsys.readouterr().err
