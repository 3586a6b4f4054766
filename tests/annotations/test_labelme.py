"""LabelMe → TFRecords round trip: decoded masks equal the rasterised shapes, boxes match."""

import base64
import json
import os

import numpy as np
import pytest
from pycocotools import mask as mask_util

from tests.data.fixtures import encode, labelme_dataset, photo, square, write_jpeg
from tfod_seg.annotations.labelme import mask_to_b64_png, read_labelme, write_labelme
from tfod_seg.data.types import Bitmap, Polygons
from tfod_seg.records.convert import convert_dataset
from tfod_seg.records.reader import iter_records


def _poly_mask(parts, h, w):
    rles = mask_util.frPyObjects([list(np.asarray(p, float).reshape(-1)) for p in parts], h, w)
    return mask_util.decode(mask_util.merge(rles))


def test_round_trip_masks_and_boxes(tmp_path):
    paths = labelme_dataset(tmp_path / "lm", n=3)
    report = convert_dataset(read_labelme(tmp_path / "lm"), tmp_path / "out", workers=1)
    assert report["images"] == 3 and report["instances"] == 12 and report["num_skipped"] == 0
    assert report["instances_per_class"] == {"cat": 3, "dog": 6, "ball": 3}
    records = list(iter_records(str(tmp_path / "out" / "train-*.tfrecord")))
    assert [r.filename for r in records] == ["img_000.jpg", "img_001.jpg", "img_002.jpg"]
    for rec, path in zip(records, paths):
        doc = json.load(open(path))
        h, w = doc["imageHeight"], doc["imageWidth"]
        shapes = doc["shapes"]
        poly = _poly_mask([shapes[0]["points"]], h, w)
        (x0, y0), (x1, y1) = shapes[1]["points"]
        rect = _poly_mask([[x0, y0, x1, y0, x1, y1, x0, y1]], h, w)
        grouped = _poly_mask([shapes[3]["points"], shapes[4]["points"]], h, w)
        np.testing.assert_array_equal(rec.masks[0], poly)
        np.testing.assert_array_equal(rec.masks[1], rect)
        np.testing.assert_array_equal(rec.masks[3], grouped)  # two parts, one instance
        assert rec.masks[2].sum() == pytest.approx(np.pi * 36, rel=0.15)  # circle of radius 6
        assert rec.class_texts == ["cat", "dog", "ball", "dog"]
        pts = np.asarray(shapes[0]["points"])
        np.testing.assert_allclose(rec.boxes[0], [pts[:, 1].min() / h, pts[:, 0].min() / w,
                                                  pts[:, 1].max() / h, pts[:, 0].max() / w], rtol=1e-6)
        np.testing.assert_allclose(rec.boxes[3], [45 / h, 60 / w, 53 / h, 83 / w], rtol=1e-6)
        assert rec.image_format == "jpeg"
        assert rec.encoded == open(os.path.join(tmp_path / "lm", rec.filename), "rb").read()  # byte for byte
    lm = open(tmp_path / "out" / "label_map.pbtxt").read()
    assert "id: 1\n  name: 'cat'" in lm and "id: 3\n  name: 'ball'" in lm


def test_write_then_read_labelme_with_embedded_image_and_mask_shape(tmp_path):
    img = encode(photo(40, 30), "PNG")
    bitmap = np.zeros((6, 9), bool)
    bitmap[1:5, 2:8] = True
    write_labelme(tmp_path / "a.json", image_path="a.png", height=30, width=40, image_data=img, shapes=[
        {"label": "m", "points": [[3, 4], [11, 9]], "shape_type": "mask", "mask": mask_to_b64_png(bitmap)},
        {"label": "__ignore__", "points": square(1, 1, 5), "shape_type": "polygon"},
        {"label": "l", "points": [[1, 1], [5, 5]], "shape_type": "line"},
        {"label": "p", "points": [[1, 1], [5, 5]], "shape_type": "polygon"},
    ])
    text = (tmp_path / "a.json").read_text()
    assert text.count("\n") == 1 and '"points":[[3.0,4.0],[11.0,9.0]]' in text  # compact JSON
    doc = json.loads(text)
    assert doc["version"].startswith("5.") and doc["imageHeight"] == 30 and doc["shapes"][0]["shape_type"] == "mask"
    assert set(doc) == {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}
    stream = read_labelme(tmp_path)
    (sample,) = list(stream)
    assert sample.image_bytes == img and sample.image_path is None
    (inst,) = sample.instances
    assert isinstance(inst.mask, Bitmap) and inst.box == (5.0, 5.0, 11.0, 9.0)
    assert [s["kind"] for s in stream.skipped] == ["ignored_label", "no_area_shape", "too_few_points"]
    assert all(s["file"] == "a.json" for s in stream.skipped)
    report = convert_dataset(read_labelme(tmp_path), tmp_path / "out", workers=1)
    assert report["skipped_by_reason"] == {"ignored_label": 1, "no_area_shape": 1, "too_few_points": 1}
    (rec,) = iter_records(str(tmp_path / "out"))
    expected = np.zeros((30, 40), np.uint8)
    expected[4:10, 3:12] = bitmap
    np.testing.assert_array_equal(rec.masks[0], expected)


def test_group_mixing_polygon_and_mask_is_one_union_instance(tmp_path):
    write_jpeg(tmp_path / "a.jpg", 40, 30)
    write_labelme(tmp_path / "a.json", image_path="a.jpg", height=30, width=40, shapes=[
        {"label": "x", "points": [[0, 0], [3, 3]], "shape_type": "mask", "group_id": 1,
         "mask": mask_to_b64_png(np.ones((4, 4), bool))},
        {"label": "x", "points": square(20, 20, 5), "shape_type": "polygon", "group_id": 1},
    ])
    (sample,) = list(read_labelme(tmp_path))
    (inst,) = sample.instances
    assert inst.box == (0.0, 0.0, 25.0, 25.0)
    m = inst.mask.load()
    assert m.sum() == 16 + 25 and m[:4, :4].all()


def test_shapes_outside_image_are_clipped_or_skipped(tmp_path):
    write_jpeg(tmp_path / "a.jpg", 40, 30)
    write_labelme(tmp_path / "a.json", image_path="a.jpg", height=30, width=40, shapes=[
        {"label": "x", "points": square(30, 20, 20), "shape_type": "polygon"},
        {"label": "y", "points": square(100, 100, 5), "shape_type": "polygon"},
    ])
    stream = read_labelme(tmp_path)
    (sample,) = list(stream)
    assert sample.instances[0].box == (30.0, 20.0, 40.0, 30.0)
    assert stream.skipped[0]["kind"] == "outside_image" and "'y' lies entirely outside the 40x30 image" in \
        stream.skipped[0]["reason"]


def test_windows_backslash_image_path_and_subfolders(tmp_path):
    write_jpeg(tmp_path / "images" / "a.jpg", 40, 30)
    os.makedirs(tmp_path / "ann")
    write_labelme(tmp_path / "ann" / "a.json", image_path="..\\images\\a.jpg", height=30, width=40,
                  shapes=[{"label": "x", "points": square(1, 1, 5)}])
    (sample,) = list(read_labelme(tmp_path))
    assert sample.filename == os.path.join("images", "a.jpg") and sample.source == os.path.join("ann", "a.json")
    assert isinstance(sample.instances[0].mask, Polygons)
