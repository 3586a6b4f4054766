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


# -- encodings and layouts other tools write ----------------------------------------------
import pytest  # noqa: E402

from tfod_seg.annotations.voc import VOID, voc_colormap  # noqa: E402

CMAP = voc_colormap()


def _save_mask(values, path, encoding, colours=None):
    """Write a mask PNG of ``values`` as a palette, grey or RGB colour PNG."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if encoding == "palette":
        _palette_png(values, path)
    elif encoding == "grey":
        Image.fromarray(values.astype(np.uint8), "L").save(path)
    else:
        table = dict(enumerate(colours or CMAP))
        table[VOID] = (224, 224, 192) if colours is None else (255, 255, 255)
        rgb = np.zeros(values.shape + (3,), np.uint8)
        for v in np.unique(values):
            rgb[values == v] = table[int(v)]
        Image.fromarray(rgb, "RGB").save(path)


def _objects_and_classes():
    obj = np.zeros((H, W), np.uint8)
    cls = np.zeros((H, W), np.uint8)
    obj[2:12, 3:20], cls[2:12, 3:20] = 1, 2      # instance 1: class 2
    obj[20:35, 25:45], cls[20:35, 25:45] = 2, 1  # instance 2: class 1
    obj[20:35, 24], cls[20:35, 24] = VOID, VOID  # void border
    return obj, cls


@pytest.mark.parametrize("encoding", ["palette", "grey", "rgb"])
def test_xml_layout_reads_every_mask_encoding(tmp_path, encoding):
    obj, cls = _objects_and_classes()
    write_jpeg(tmp_path / "JPEGImages" / "a.jpg", W, H)
    _save_mask(obj, tmp_path / "SegmentationObject" / "a.png", encoding)
    _save_mask(cls, tmp_path / "SegmentationClass" / "a.png", encoding)
    objs = OBJ.format(name="bicycle", difficult=0, x0=4, y0=3, x1=20, y1=12) + \
        OBJ.format(name="aeroplane", difficult=0, x0=26, y0=21, x1=45, y1=35)
    os.makedirs(tmp_path / "Annotations")
    (tmp_path / "Annotations" / "a.xml").write_text(XML.format(id="a", w=W, h=H, objects=objs))
    report = convert_dataset(read_voc(tmp_path), tmp_path / "out", workers=1)
    assert report["instances"] == 2 and report["num_skipped"] == 0, report["skipped"]
    (rec,) = iter_records(str(tmp_path / "out"))
    np.testing.assert_array_equal(rec.masks[0], obj == 1)
    np.testing.assert_array_equal(rec.masks[1], obj == 2)


@pytest.mark.parametrize("names_file", ["class_names.txt", "labelmap.txt"])
@pytest.mark.parametrize("encoding", ["palette", "grey", "rgb"])
def test_mask_only_layout_takes_instances_from_masks(tmp_path, names_file, encoding):
    obj, cls = _objects_and_classes()
    colours = None
    if names_file == "class_names.txt":  # labelme2voc
        (tmp_path / "class_names.txt").write_text("_background_\nkite\nboat\n")
    else:  # CVAT / Datumaro, with its own colours
        colours = [(0, 0, 0), (250, 50, 83), (51, 221, 255)]
        (tmp_path / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\n"
                                               "kite:250,50,83::\nboat:51,221,255::\n")
    write_jpeg(tmp_path / "JPEGImages" / "a.jpg", W, H)
    _save_mask(obj, tmp_path / "SegmentationObject" / "a.png", encoding)
    _save_mask(cls, tmp_path / "SegmentationClass" / "a.png", encoding, colours if encoding == "rgb" else None)
    report = convert_dataset(read_voc(tmp_path), tmp_path / "out", workers=1)
    assert report["images"] == 1 and report["instances"] == 2 and report["num_skipped"] == 0, report["skipped"]
    (rec,) = iter_records(str(tmp_path / "out"))
    assert rec.class_texts == ["boat", "kite"]
    np.testing.assert_array_equal(rec.masks[0], obj == 1)
    np.testing.assert_array_equal(rec.masks[1], obj == 2)
    np.testing.assert_allclose(rec.boxes[0], [2 / H, 3 / W, 12 / H, 20 / W], rtol=1e-6)


def test_labelme2voc_png_folder_names(tmp_path):
    obj, cls = _objects_and_classes()
    (tmp_path / "class_names.txt").write_text("_background_\nkite\nboat\n")
    write_jpeg(tmp_path / "JPEGImages" / "a.jpg", W, H)
    _save_mask(obj, tmp_path / "SegmentationObjectPNG" / "a.png", "palette")
    _save_mask(cls, tmp_path / "SegmentationClassPNG" / "a.png", "palette")
    samples = list(read_voc(tmp_path))
    assert [i.label for i in samples[0].instances] == ["boat", "kite"]


def test_wrong_size_mask_and_extra_values_are_reported(tmp_path):
    voc_root(tmp_path)
    big = np.zeros((H + 5, W), np.uint8)
    _palette_png(big, tmp_path / "SegmentationObject" / "2008_000001.png")
    report = convert_dataset(read_voc(tmp_path), tmp_path / "out", workers=1)
    assert report["skipped_by_reason"] == {"difficult": 1, "mask_size_mismatch": 2}
    obj = voc_root(tmp_path)
    obj[0:2, 0:2] = 7  # a value beyond the 3 objects
    _palette_png(obj, tmp_path / "SegmentationObject" / "2008_000001.png")
    stream = read_voc(tmp_path)
    list(stream)
    assert any(n["kind"] == "voc_extra_mask_values" and "[7]" in n["reason"] for n in stream.notes)


def test_nan_bndbox_is_skipped_not_the_whole_image(tmp_path):
    write_jpeg(tmp_path / "JPEGImages" / "a.jpg", W, H)
    os.makedirs(tmp_path / "Annotations")
    objs = OBJ.format(name="cat", difficult=0, x0="nan", y0=1, x1=10, y1=10)
    (tmp_path / "Annotations" / "a.xml").write_text(XML.format(id="a", w=W, h=H, objects=objs))
    stream = read_voc(tmp_path)
    (sample,) = list(stream)
    assert sample.instances == ()
    assert [s["kind"] for s in stream.skipped] == ["bad_annotation"]
    assert "finite" in stream.skipped[0]["reason"]
