"""Pascal VOC → TFRecords round trip: SegmentationObject instances, 255 border, difficult flag."""

import os

import numpy as np
from PIL import Image

from tests.data.fixtures import write_jpeg
from tfod_seg.annotations.voc import VOC_CLASSES, read_voc
from tfod_seg.records.convert import convert_dataset
from tfod_seg.records.reader import iter_records

H, W = 40, 50
XML = """<annotation><folder>VOC2012</folder><filename>{id}.jpg</filename>
<size><width>{w}</width><height>{h}</height><depth>3</depth></size>
{objects}</annotation>"""
OBJ = ("<object><name>{name}</name><difficult>{difficult}</difficult>"
       "<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")


def _palette_png(arr, path):
    img = Image.fromarray(arr.astype(np.uint8), "P")
    img.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)])
    img.save(path)


def voc_root(root, wrong_class=False):
    """One image, three objects: a person, a difficult dog, a cat; borders of 255 around each."""
    for d in ("Annotations", "JPEGImages", "SegmentationObject", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(root / d, exist_ok=True)
    objects = [("person", 0, (3, 3, 20, 30)), ("dog", 1, (25, 5, 45, 20)), ("cat", 0, (25, 25, 48, 38))]
    obj = np.zeros((H, W), np.uint8)
    cls = np.zeros((H, W), np.uint8)
    for k, (name, _, (x0, y0, x1, y1)) in enumerate(objects, start=1):
        obj[y0 - 1:y1, x0 - 1:x1] = 255  # void border ...
        obj[y0:y1 - 1, x0:x1 - 1] = k  # ... around the object pixels
        cls[y0 - 1:y1, x0 - 1:x1] = 255
        cls[y0:y1 - 1, x0:x1 - 1] = VOC_CLASSES.index("dog" if wrong_class and name == "cat" else name)
    write_jpeg(root / "JPEGImages" / "2008_000001.jpg", W, H)
    _palette_png(obj, root / "SegmentationObject" / "2008_000001.png")
    _palette_png(cls, root / "SegmentationClass" / "2008_000001.png")
    objs = "".join(OBJ.format(name=n, difficult=d, x0=b[0], y0=b[1], x1=b[2], y1=b[3]) for n, d, b in objects)
    (root / "Annotations" / "2008_000001.xml").write_text(XML.format(id="2008_000001", w=W, h=H, objects=objs))
    # a detection-only image, not in the segmentation set
    write_jpeg(root / "JPEGImages" / "2008_000002.jpg", W, H)
    (root / "Annotations" / "2008_000002.xml").write_text(XML.format(id="2008_000002", w=W, h=H, objects=""))
    (root / "ImageSets" / "Segmentation" / "trainval.txt").write_text("2008_000001\n")
    return obj


def test_round_trip_instances_border_and_difficult(tmp_path):
    obj = voc_root(tmp_path)
    report = convert_dataset(read_voc(tmp_path), tmp_path / "out", workers=1)
    assert report["images"] == 1 and report["instances"] == 2
    assert report["skipped_by_reason"] == {"difficult": 1}
    assert "Annotations/2008_000001.xml" == report["skipped"][0]["file"]
    (rec,) = iter_records(str(tmp_path / "out"))
    assert rec.class_texts == ["person", "cat"] and rec.filename == "JPEGImages/2008_000001.jpg"
    np.testing.assert_array_equal(rec.masks[0], obj == 1)  # 255 border not part of the instance
    np.testing.assert_array_equal(rec.masks[1], obj == 3)  # object index counts the difficult one
    np.testing.assert_allclose(rec.boxes[0], [2 / H, 2 / W, 30 / H, 20 / W], rtol=1e-6)  # 1-based → edges


def test_include_difficult(tmp_path):
    obj = voc_root(tmp_path)
    report = convert_dataset(read_voc(tmp_path, include_difficult=True), tmp_path / "out", workers=1)
    assert report["instances"] == 3 and report["num_skipped"] == 0
    (rec,) = iter_records(str(tmp_path / "out"))
    np.testing.assert_array_equal(rec.masks[1], obj == 2)


def test_segmentation_class_disagreeing_with_xml_is_reported(tmp_path):
    voc_root(tmp_path, wrong_class=True)
    report = convert_dataset(read_voc(tmp_path), tmp_path / "out", workers=1)
    kinds = report["skipped_by_reason"]
    assert kinds == {"difficult": 1, "voc_class_mismatch": 1}
    assert any("SegmentationClass marks object 3 as 'dog' but the XML says 'cat'" in r["reason"]
               for r in report["skipped"])
