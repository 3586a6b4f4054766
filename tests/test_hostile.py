"""Hostile input across the commands: every case ends in an exact outcome, never a traceback.

Each row builds its inputs under ``tmp_path`` and gives the command line. Outcomes:

* ``error``: exit status 2, stderr is ``error: ...`` containing ``text`` (which names the file
  and the field or value), no traceback, and none of ``absent`` exists afterwards (no file under
  a final name);
* ``skip``: exit status 0 and ``OUT/report.json`` counts a skip of ``skip_kind`` whose reason
  contains ``text`` (nothing dropped silently);
* ``ok``: exit status 0 and ``text`` in stdout (the input was used, e.g. geometry clipped);
* ``problem``: `inspect` found a bad record: exit status 1 and ``text`` in its problem list.

Rows are grouped by kind (``kind``); `test_case_counts_by_kind` prints the table of counts.
Commands owned elsewhere add their rows to ``CASES`` the same way.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np
import pytest
from PIL import Image

from tests.data.fixtures import encode, photo, write_jpeg
from tfod_seg.cli import main

W, H = 48, 40


@dataclasses.dataclass
class Case:
    id: str
    kind: str
    build: Callable[[Path], List[str]]
    expect: str  # "error" | "skip" | "ok" | "problem"
    text: str
    skip_kind: Optional[str] = None
    absent: Sequence[str] = ("out/report.json", "out/label_map.pbtxt", "out/train-00000-of-00001.tfrecord")


# -- builders ---------------------------------------------------------------------------------
def _labelme(t: Path, shapes=None, raw: Optional[bytes] = None, image=True, **doc) -> List[str]:
    d = t / "lm"
    d.mkdir(exist_ok=True)
    if image:
        write_jpeg(d / "img.jpg", W, H)
    base = {"version": "5.4.1", "flags": {}, "imagePath": "img.jpg", "imageData": None, "imageHeight": H,
            "imageWidth": W,
            "shapes": shapes if shapes is not None else [{"label": "cat", "points": [[2, 2], [30, 3], [20, 30]],
                                                          "shape_type": "polygon", "group_id": None}]}
    base.update(doc)
    (d / "a.json").write_bytes(raw if raw is not None else json.dumps(base).encode())
    return ["convert", "--format", "labelme", str(d), "--out", str(t / "out"), "--workers", "1", "--quiet"]


def _shape(points, shape_type="polygon", label="cat", **kw):
    return [dict({"label": label, "points": points, "shape_type": shape_type, "group_id": None}, **kw)]


def _coco(t: Path, mutate=None, raw: Optional[bytes] = None, extra: Sequence[str] = ()) -> List[str]:
    d = t / "coco"
    d.mkdir(exist_ok=True)
    write_jpeg(d / "img.jpg", W, H)
    doc = {"images": [{"id": 1, "file_name": "img.jpg", "height": H, "width": W}],
           "categories": [{"id": 1, "name": "cat"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 20, 20], "iscrowd": 0,
                            "segmentation": [[2, 2, 22, 2, 22, 22, 2, 22]], "area": 400}]}
    if mutate:
        mutate(doc)
    (d / "ann.json").write_bytes(raw if raw is not None else json.dumps(doc).encode())
    return ["convert", "--format", "coco", str(d / "ann.json"), "--image-dir", str(d), "--out", str(t / "out"),
            "--workers", "1", "--quiet", *extra]


def _ann(**kw):
    return lambda doc: doc["annotations"][0].update(kw)


XML = ("<annotation><filename>{fn}</filename><size><width>{w}</width><height>{h}</height></size>"
       "<object><name>cat</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>2</ymin><xmax>20</xmax>"
       "<ymax>20</ymax></bndbox></object></annotation>")


def _voc(t: Path, xml: Optional[str] = None, mask: Optional[np.ndarray] = None, x0="2") -> List[str]:
    d = t / "voc"
    (d / "Annotations").mkdir(parents=True, exist_ok=True)
    write_jpeg(d / "JPEGImages" / "a.jpg", W, H)
    (d / "Annotations" / "a.xml").write_text(xml if xml is not None else XML.format(fn="a.jpg", w=W, h=H, x0=x0))
    if mask is not None:
        (d / "SegmentationObject").mkdir(exist_ok=True)
        Image.fromarray(mask.astype(np.uint8), "L").save(d / "SegmentationObject" / "a.png")
    return ["convert", "--format", "voc", str(d), "--out", str(t / "out"), "--workers", "1", "--quiet"]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's signature)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _records(t: Path) -> str:
    """Real records of one LabelMe image (converted), for inspect/visualize rows."""
    _labelme(t)
    assert main(["convert", "--format", "labelme", str(t / "lm"), "--out", str(t / "rec"), "--workers", "1",
                 "--quiet"]) == 0
    return str(t / "rec")


def _bad_record(t: Path, features) -> List[str]:
    """A TFRecord file holding one record: ``features`` as a tf.train.Example, or (None) bytes
    that are not an Example."""
    import tensorflow as tf

    from tfod_seg.records.example import serialize_example

    with tf.io.TFRecordWriter(str(t / "x.tfrecord")) as w:
        w.write(serialize_example(features) if features is not None else b"\xff\xff\xff not a protobuf")
    return ["inspect", str(t / "x.tfrecord"), "--quiet"]


_HELD = []


def _hold_lock(folder: Path):
    """Hold the output lock of ``folder`` as a concurrent run would (released after the test)."""
    from tfod_seg import io

    lock = io.output_lock(str(folder))
    lock.__enter__()
    _HELD.append(lock)


def _deep_json(n=100_000) -> bytes:
    return b"[" * n + b"]" * n


NOT_UTF8 = b'{"shapes": [], "imagePath": "\xff\xfe.jpg"}'
CFG = ["--label-map", "L", "--train", "T/train-*", "--val", "T/val-*", "--model-dir", "M"]


def _config(t: Path, *extra, template="garden_cpu_demo", label_map: Optional[bytes] = None) -> List[str]:
    (t / "T").mkdir(exist_ok=True)
    (t / "T" / "train-00000-of-00001.tfrecord").write_bytes(b"")
    (t / "T" / "val-00000-of-00001.tfrecord").write_bytes(b"")
    (t / "L.pbtxt").write_bytes(label_map if label_map is not None else b"item {\n  id: 1\n  name: 'cat'\n}\n")
    args = [a.replace("L", str(t / "L.pbtxt")) if a == "L" else a.replace("T/", str(t / "T") + "/")
            .replace("M", str(t / "M")) if a in ("T/train-*", "T/val-*", "M") else a for a in CFG]
    return ["config", "--template", template, *args, "--out", str(t / "cfg.yaml"), *extra]


# -- the table ----------------------------------------------------------------------------------
CASES: List[Case] = [
    # text encodings
    Case("labelme_not_utf8", "encoding", lambda t: _labelme(t, raw=NOT_UTF8), "skip", "not UTF-8", "malformed_json"),
    Case("labelme_bom_ok", "encoding", lambda t: _labelme(t, raw=b"\xef\xbb\xbf" + json.dumps(
        {"shapes": [], "imagePath": "img.jpg", "imageHeight": H, "imageWidth": W}).encode()), "ok", "1 images"),
    Case("coco_not_utf8", "encoding", lambda t: _coco(t, raw=b'{"images": "\xff"}'), "error",
         "ann.json: not UTF-8 text"),
    Case("labelmap_classes_file_not_utf8", "encoding", lambda t: (t.joinpath("c.txt").write_bytes(b"cat\n\xffdog\n"),
         ["labelmap", "--classes-file", str(t / "c.txt"), "--out", str(t / "l.pbtxt")])[1], "error",
         "c.txt: not a UTF-8 text file", absent=("l.pbtxt",)),
    Case("labelmap_check_not_utf8", "encoding", lambda t: (t.joinpath("l.pbtxt").write_bytes(b"item {\xff}"),
         ["labelmap", "--check", str(t / "l.pbtxt")])[1], "error", "l.pbtxt: not a UTF-8 text file", absent=()),
    Case("convert_label_map_not_utf8", "encoding", lambda t: (t.joinpath("l.pbtxt").write_bytes(b"\xff"),
         _labelme(t) + ["--label-map", str(t / "l.pbtxt")])[1], "error", "l.pbtxt: not a UTF-8 text file"),
    Case("config_label_map_not_utf8", "encoding", lambda t: _config(t, label_map=b"item {\xff\n"), "error",
         "L.pbtxt: not a UTF-8 text file", absent=("cfg.yaml",)),
    Case("config_check_not_utf8", "encoding", lambda t: (t.joinpath("c.yaml").write_bytes(b"task: \xff\n"),
         ["config", "--check", str(t / "c.yaml")])[1], "error", "c.yaml", absent=()),
    Case("visualize_predictions_not_utf8", "encoding", lambda t: (t.joinpath("r.json").write_bytes(b"[\xff]"),
         ["visualize", "--records", _records(t), "--predictions", str(t / "r.json"), "--out", str(t / "v"),
          "--no-progress"])[1], "error", "r.json: not a UTF-8 text file", absent=("v/a.png",)),
    Case("voc_labelmap_txt_not_utf8", "encoding", lambda t: (_voc(t), (t / "voc" / "labelmap.txt").write_bytes(
        b"cat:\xff"))[0], "error", "labelmap.txt: not a UTF-8 text file"),

    # JSON structure and nesting
    Case("labelme_malformed", "json structure", lambda t: _labelme(t, raw=b'{"shapes": [}'), "skip",
         "malformed JSON at line 1", "malformed_json"),
    Case("labelme_deep_nesting", "json structure", lambda t: _labelme(t, raw=_deep_json()), "skip",
         "nested too deeply", "malformed_json"),
    Case("labelme_top_level_list", "json structure", lambda t: _labelme(t, raw=b"[1, 2]"), "skip",
         "no 'shapes' list", "not_labelme"),
    Case("labelme_shapes_not_list", "json structure", lambda t: _labelme(t, shapes={"a": 1}), "skip",
         "'shapes' must be a list", "malformed_json"),
    Case("labelme_shape_not_object", "json structure", lambda t: _labelme(t, shapes=[[1, 2]]), "skip",
         "shape 0: not an object", "bad_shape"),
    Case("coco_deep_nesting", "json structure", lambda t: _coco(t, raw=_deep_json()), "error",
         "ann.json: JSON nested too deeply"),
    Case("coco_top_level_list", "json structure", lambda t: _coco(t, raw=b"[]"), "error",
         "ann.json: expected a JSON object"),
    Case("coco_malformed", "json structure", lambda t: _coco(t, raw=b'{"images": [}'), "error",
         "ann.json: malformed JSON at line 1"),
    Case("coco_annotations_not_list", "json structure", lambda t: _coco(t, lambda d: d.update(annotations={})),
         "error", "'annotations' must be a list"),
    Case("visualize_predictions_not_list", "json structure", lambda t: (t.joinpath("r.json").write_text('{"a": 1}'),
         ["visualize", "--records", _records(t), "--predictions", str(t / "r.json"), "--out", str(t / "v"),
          "--no-progress"])[1], "error", "r.json: expected a JSON list of COCO results", absent=("v/a.png",)),

    # id and value types
    Case("labelme_group_id_list", "id type", lambda t: _labelme(t, shapes=_shape([[2, 2], [30, 3], [20, 30]],
         group_id=[1])), "skip", "group_id must be an integer or null, got [1]", "bad_shape"),
    Case("labelme_label_number", "id type", lambda t: _labelme(t, shapes=_shape([[2, 2], [30, 3], [20, 30]],
         label=5)), "skip", "label must be a non-empty string, got 5", "bad_shape"),
    Case("labelme_height_string", "id type", lambda t: _labelme(t, imageHeight="40"), "skip",
         "imageHeight/imageWidth must be positive integers", "bad_annotation"),
    Case("labelme_height_bool", "id type", lambda t: _labelme(t, imageHeight=True), "skip",
         "imageHeight/imageWidth must be positive integers", "bad_annotation"),
    Case("labelme_shape_type_list", "id type", lambda t: _labelme(t, shapes=_shape([[2, 2], [30, 3], [20, 30]],
         shape_type=["polygon"])), "skip", "shape_type must be a string", "bad_shape"),
    Case("labelme_image_path_number", "id type", lambda t: _labelme(t, imagePath=7), "skip",
         "imagePath must be a string", "bad_annotation"),
    Case("coco_annotation_image_id_list", "id type", lambda t: _coco(t, _ann(image_id=[1])), "skip",
         "image_id must be an integer, got [1]", "bad_annotation"),
    Case("coco_category_id_list", "id type", lambda t: _coco(t, _ann(category_id=[1])), "skip",
         "category_id [1] is not in 'categories'", "unknown_category"),
    Case("coco_image_id_list", "id type", lambda t: _coco(t, lambda d: d["images"][0].update(id=[1])), "error",
         "images[0]: image id must be an integer or a string, got [1]"),
    Case("coco_category_id_string", "id type", lambda t: _coco(t, lambda d: d["categories"][0].update(id="1")),
         "error", "categories[0]: id must be an integer, got '1'"),
    Case("coco_iscrowd_string_zero", "id type", lambda t: _coco(t, _ann(iscrowd="0")), "ok", "1 instances"),
    Case("coco_iscrowd_two", "id type", lambda t: _coco(t, _ann(iscrowd=2)), "skip", "iscrowd must be 0 or 1, got 2",
         "bad_annotation"),
    Case("coco_height_float", "id type", lambda t: _coco(t, lambda d: d["images"][0].update(height=40.0)), "skip",
         "'height'/'width' must be positive integers", "bad_image_entry"),
    Case("coco_file_name_list", "id type", lambda t: _coco(t, lambda d: d["images"][0].update(file_name=["a"])),
         "skip", "'file_name' must be a non-empty string", "bad_image_entry"),
    Case("visualize_result_image_id_string", "id type", lambda t: (t.joinpath("r.json").write_text(json.dumps(
        [{"image_id": "1", "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.9}])),
        ["visualize", "--records", _records(t), "--predictions", str(t / "r.json"), "--out", str(t / "v"),
         "--no-progress"])[1], "error", "r.json: result 0: image_id must be an integer, got '1'", absent=("v/a.png",)),
    Case("visualize_result_score_string", "id type", lambda t: (t.joinpath("r.json").write_text(json.dumps(
        [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "score": "high"}])),
        ["visualize", "--records", _records(t), "--predictions", str(t / "r.json"), "--out", str(t / "v"),
         "--no-progress"])[1], "error", "result 0: score must be a finite number", absent=("v/a.png",)),
    Case("config_set_bad_type", "id type", lambda t: _config(t, "--set", "trainer.train_steps=abc"), "error",
         "trainer.train_steps", absent=("cfg.yaml",)),

    # geometry: finiteness and ranges
    Case("labelme_points_huge", "geometry", lambda t: _labelme(t, shapes=_shape([[2, 2], [1e12, 3], [20, -1e9]])),
         "ok", "1 instances"),
    Case("labelme_circle_radius_1e300", "geometry", lambda t: _labelme(t, shapes=_shape([[20, 20], [1e300, 20]],
         "circle")), "ok", "1 instances"),
    Case("labelme_points_nan", "geometry", lambda t: _labelme(t, raw=b'{"imagePath": "img.jpg", "imageHeight": 40, '
         b'"imageWidth": 48, "shapes": [{"label": "cat", "shape_type": "polygon", "points": [[1, 1], [NaN, 5], '
         b'[9, 9]]}]}'), "skip", "'points' must be a list of [x, y] numbers", "bad_shape"),
    Case("labelme_points_overflow", "geometry", lambda t: _labelme(t, raw=b'{"imagePath": "img.jpg", "imageHeight": '
         b'40, "imageWidth": 48, "shapes": [{"label": "cat", "shape_type": "polygon", "points": [[1, 1], [1e400, 5], '
         b'[9, 9]]}]}'), "skip", "'points' must be a list of [x, y] numbers", "bad_shape"),
    Case("labelme_shape_outside", "geometry", lambda t: _labelme(t, shapes=_shape([[500, 500], [600, 500],
         [550, 600]])), "skip", "lies entirely outside the 48x40 image", "outside_image"),
    Case("labelme_rectangle_one_point", "geometry", lambda t: _labelme(t, shapes=_shape([[2, 2]], "rectangle")),
         "skip", "rectangle needs 2 corner points", "too_few_points"),
    Case("coco_bbox_nan", "geometry", lambda t: _coco(t, _ann(bbox=[float("nan"), 1, 5, 5])), "skip",
         "bbox must be [x, y, width, height] finite numbers", "bad_annotation"),
    Case("coco_polygon_nan", "geometry", lambda t: _coco(t, _ann(segmentation=[[2, 2, float("nan"), 2, 22, 22]])),
         "skip", "polygon part 0 has coordinates that are not finite numbers", "bad_annotation"),
    Case("coco_polygon_1e9", "geometry", lambda t: _coco(t, _ann(segmentation=[[2, 2, 1e9, 2, 22, 1e9]])), "ok",
         "1 instances"),
    Case("coco_rle_garbage", "geometry", lambda t: _coco(t, _ann(segmentation={"counts": "garbage!", "size": [H, W]})),
         "skip", "not a valid COCO RLE", "bad_rle"),
    Case("coco_rle_counts_nested", "geometry", lambda t: _coco(t, _ann(segmentation={"counts": [[1]], "size": [H, W]})),
         "skip", "uncompressed RLE 'counts' must be non-negative integers", "bad_rle"),
    Case("coco_rle_counts_short", "geometry", lambda t: _coco(t, _ann(segmentation={"counts": [5, 5], "size": [H, W]})),
         "skip", "expected height*width=1920", "rle_size_mismatch"),
    Case("voc_bndbox_nan", "geometry", lambda t: _voc(t, x0="nan"), "skip", "finite numeric", "bad_annotation"),
    Case("voc_mask_wrong_size", "geometry", lambda t: _voc(t, mask=np.ones((H + 3, W), np.uint8)), "skip",
         "a.png is 48x43 (WxH), the image is 48x40", "mask_size_mismatch"),

    # image content and size
    Case("image_decompression_bomb", "image", lambda t: (
        _labelme(t), (t / "lm" / "img.jpg").unlink(), (t / "lm" / "img.png").write_bytes(_png_header_only(60000, 60000)),
        _labelme(t, image=False, imagePath="img.png", imageHeight=60000, imageWidth=60000))[-1], "skip",
        "over the limit of 89478485", "too_many_pixels"),
    Case("image_over_max_pixels_flag", "image", lambda t: _labelme(t) + ["--max-pixels", "100"], "skip",
         "48x40 = 1920 pixels, over the limit of 100", "too_many_pixels"),
    Case("image_not_an_image", "image", lambda t: (_labelme(t), (t / "lm" / "img.jpg").write_text("hello"))[0],
         "skip", "not an image file", "bad_image"),
    Case("image_truncated_jpeg", "image", lambda t: (_labelme(t), (t / "lm" / "img.jpg").write_bytes(
        encode(photo(W, H))[:300]))[0], "skip", "truncated", "bad_image"),
    Case("image_size_mismatch", "image", lambda t: _labelme(t, imageWidth=W + 1), "skip",
         "image size differs from the annotation", "image_size_mismatch"),
    Case("labelme_image_data_garbage", "image", lambda t: _labelme(t, imageData=base64.b64encode(b"xx").decode(),
         imagePath=None), "skip", "not an image file", "bad_image"),
    Case("labelme_mask_not_png", "image", lambda t: _labelme(t, shapes=_shape([[1, 1], [9, 9]], "mask",
         mask="bm90IGEgcG5n")), "skip", "'mask' is not a usable base64 PNG", "bad_shape"),

    # security: paths outside the dataset
    Case("labelme_image_path_absolute", "security", lambda t: _labelme(t, imagePath="/etc/hostname"), "skip",
         "imagePath '/etc/hostname' escapes the dataset root", "path_outside_root"),
    Case("labelme_image_path_climbs", "security", lambda t: _labelme(t, imagePath="../../../../etc/hostname"),
         "skip", "escapes the dataset root", "path_outside_root"),
    Case("labelme_image_path_symlink_out", "security", lambda t: (_labelme(t), (t / "lm" / "link.jpg").symlink_to(
        "/etc/hostname"), _labelme(t, imagePath="link.jpg"))[-1], "skip", "escapes the dataset root",
        "path_outside_root"),
    Case("coco_file_name_absolute", "security", lambda t: _coco(t, lambda d: d["images"][0].update(
        file_name="/etc/hostname")), "skip", "file_name escapes the image folder", "path_outside_root"),
    Case("coco_file_name_climbs", "security", lambda t: _coco(t, lambda d: d["images"][0].update(
        file_name="../../../../etc/hostname")), "skip", "file_name escapes the image folder", "path_outside_root"),
    Case("voc_filename_climbs", "security", lambda t: _voc(t, xml=XML.format(fn="../../../etc/hostname", w=W, h=H,
         x0=2)), "skip", "escapes JPEGImages/", "path_outside_root"),
    Case("voc_external_entity", "security", lambda t: _voc(t, xml='<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x '
         'SYSTEM "file:///etc/hostname">]><annotation><filename>a.jpg</filename><object><name>&x;</name><bndbox>'
         '<xmin>2</xmin><ymin>2</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>'), "skip",
         "missing <name>", "bad_annotation"),
    Case("voc_billion_laughs", "security", lambda t: _voc(t, xml='<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaa">'
         + "".join(f'<!ENTITY {c}{n} "' + f"&{p};" * 10 + '">' for n, (c, p) in enumerate(
             [("b", "a"), ("c", "b0"), ("d", "c1"), ("e", "d2"), ("f", "e3"), ("g", "f4"), ("h", "g5")]))
         + ']><annotation><filename>a.jpg</filename><object><name>&h6;</name></object></annotation>'), "skip",
         "entity amplification", "malformed_xml"),

    Case("labelme_symlink_loop_in_folder", "path kind", lambda t: (_labelme(t), (t / "lm" / "loop").symlink_to(
        t / "lm", target_is_directory=True))[0], "ok", "1 images"),
    Case("labelme_image_path_is_folder", "path kind", lambda t: (_labelme(t), (t / "lm" / "sub.jpg").mkdir(),
         _labelme(t, imagePath="sub.jpg"))[-1], "skip", "image file not found", "missing_image"),

    # output paths of every command
    Case("convert_out_is_file", "path kind", lambda t: (t.joinpath("out").write_text("x"), _labelme(t))[1], "error",
         "out: output folder is a file", absent=()),
    Case("convert_out_under_file", "path kind", lambda t: (t.joinpath("f").write_text("x"),
         _labelme(t)[:-5] + ["--out", str(t / "f" / "out"), "--workers", "1", "--quiet"])[1], "error", "f/out",
         absent=("f/out",)),
    Case("convert_out_unwritable", "path kind", lambda t: _labelme(t)[:-5] + ["--out", "/sys/tfod-seg-hostile/out",
         "--workers", "1", "--quiet"], "error", "/sys/tfod-seg-hostile", absent=()),
    Case("convert_label_map_is_folder", "path kind", lambda t: _labelme(t) + ["--label-map", str(t)], "error",
         "is a directory, expected a label map file"),
    Case("convert_input_missing", "path kind", lambda t: ["convert", "--format", "labelme", str(t / "nope"), "--out",
         str(t / "out")], "error", "nope: not a directory of LabelMe JSON files"),
    Case("coco_image_dir_is_file", "path kind", lambda t: _coco(t)[:5] + [str(t / "coco" / "img.jpg"), "--out",
         str(t / "out"), "--quiet"], "error", "img.jpg: image directory not found"),
    Case("voc_root_is_file", "path kind", lambda t: (t.joinpath("v").write_text("x"), ["convert", "--format", "voc",
         str(t / "v"), "--out", str(t / "out")])[1], "error", "v: not a Pascal VOC root"),
    Case("labelmap_out_is_folder", "path kind", lambda t: ["labelmap", "--classes", "a,b", "--out", str(t)], "error",
         f"{{t}}: --out label map is a folder, expected a file path", absent=()),
    Case("labelmap_out_under_file", "path kind", lambda t: (t.joinpath("f").write_text("x"),
         ["labelmap", "--classes", "a,b", "--out", str(t / "f" / "l.pbtxt")])[1], "error", "is in the way",
         absent=("f/l.pbtxt",)),
    Case("labelmap_check_folder", "path kind", lambda t: ["labelmap", "--check", str(t)], "error",
         "is a directory, expected a label map file", absent=()),
    Case("labelmap_classes_file_missing", "path kind", lambda t: ["labelmap", "--classes-file", str(t / "no.txt"),
         "--out", str(t / "l.pbtxt")], "error", "no.txt: class list file not found", absent=("l.pbtxt",)),
    Case("inspect_nothing_matches", "path kind", lambda t: ["inspect", str(t / "none-*.tfrecord")], "error",
         "none-*.tfrecord: no file matches", absent=()),
    Case("inspect_not_tfrecord", "path kind", lambda t: (t.joinpath("x.tfrecord").write_text("hello world"),
         ["inspect", str(t / "x.tfrecord"), "--quiet"])[1], "error", "x.tfrecord: record 0 cannot be read", absent=()),
    Case("inspect_negative_height", "id type", lambda t: _bad_record(t, {"image/height": ("int64", [-5]),
         "image/width": ("int64", [10])}), "problem", "x.tfrecord#0: image/height x image/width = -5x10"),
    Case("inspect_not_an_example", "json structure", lambda t: _bad_record(t, None), "problem",
         "x.tfrecord: record 0 is not a tf.train.Example"),
    Case("inspect_json_is_folder", "path kind", lambda t: ["inspect", _records(t), "--json", str(t), "--quiet"],
         "error", "--json file is a folder, expected a file path", absent=()),
    Case("inspect_render_out_is_file", "path kind", lambda t: (t.joinpath("f").write_text("x"),
         ["inspect", _records(t), "--render", "1", "--out", str(t / "f"), "--quiet"])[1], "error",
         "f: --out folder is a file, expected a folder", absent=()),
    Case("config_out_is_folder", "path kind", lambda t: _config(t)[:-2] + ["--out", str(t)], "error",
         "is a folder", absent=()),
    Case("config_template_missing", "path kind", lambda t: _config(t, template="no_such_template"), "error",
         "no_such_template: no such template", absent=("cfg.yaml",)),
    Case("templates_dir_is_file", "path kind", lambda t: (t.joinpath("f").write_text("x"),
         ["templates", "--dir", str(t / "f")])[1], "error", "f: --dir is not a folder of templates", absent=()),
    Case("visualize_out_is_file", "path kind", lambda t: (t.joinpath("f").write_text("x"),
         ["visualize", "--records", _records(t), "--out", str(t / "f"), "--no-progress"])[1], "error",
         "f: --out folder is a file, expected a folder", absent=()),
    Case("convert_concurrent_run_same_out", "concurrency", lambda t: (_labelme(t), _hold_lock(t / "out"))[0],
         "error", "out: another tfod-seg run (process", absent=("out/report.json",)),
    Case("convert_cleans_stale_temporaries", "concurrency", lambda t: (_labelme(t), (t / "out").mkdir(),
         (t / "out" / ".train-00000-of-00001.tfrecord.k2j4h5g6.tmp").write_bytes(b"x" * 1000))[0], "ok", "1 images"),
    Case("visualize_max_pixels_flag", "image", lambda t: ["visualize", "--labelme", (_labelme(t), str(t / "lm"))[1],
         "--out", str(t / "v"), "--no-progress", "--max-pixels", "1000"], "error",
         "48x40 = 1920 pixels, over the limit of 1000", absent=("v/img.png",)),
    Case("visualize_coco_garbage_rle", "geometry", lambda t: ["visualize", "--coco", _coco(t, _ann(segmentation={
        "counts": "garbage!", "size": [H, W]}))[3], "--out", str(t / "v"), "--no-progress"], "ok", "wrote 1 image(s)"),
    Case("visualize_labelme_bomb", "image", lambda t: (
        _labelme(t), (t / "lm" / "img.jpg").unlink(), (t / "lm" / "img.png").write_bytes(_png_header_only(60000, 60000)),
        _labelme(t, image=False, imagePath="img.png", imageHeight=60000, imageWidth=60000),
        ["visualize", "--labelme", str(t / "lm"), "--out", str(t / "v"), "--no-progress"])[-1], "error",
        "over the limit of 89478485", absent=("v/img.png",)),
]


def _check_error(case, tmp_path, rc, out, err):
    assert rc == 2, (rc, out, err)
    assert err.startswith("error: "), err
    assert case.text.replace("{t}", str(tmp_path)) in err, err
    assert len(err.strip().splitlines()) <= 3, err


def _check_skip(case, tmp_path, rc, out, err):
    assert rc == 0, (rc, out, err)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    matches = [s for s in report["skipped"] if case.skip_kind is None or s["kind"] == case.skip_kind]
    assert any(case.text in s["reason"] or case.text in (s["file"] or "") for s in matches), report["skipped"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case, tmp_path, capsys, monkeypatch):
    from tfod_seg.data import images

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(images, "_max_pixels", images.DEFAULT_MAX_PIXELS)  # --max-pixels is process-wide
    argv = case.build(tmp_path)
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if case.expect == "error":
        _check_error(case, tmp_path, rc, out, err)
        for rel in case.absent:
            assert not (tmp_path / rel).exists(), rel
    elif case.expect == "skip":
        _check_skip(case, tmp_path, rc, out, err)
    elif case.expect == "problem":
        assert rc == 1, (rc, out, err)
        assert case.text in out, out
    else:
        assert rc == 0, (rc, out, err)
        assert case.text in out, out
    while _HELD:
        _HELD.pop().__exit__(None, None, None)
    assert not [p for p in tmp_path.rglob("*.tmp")], "temporary files left behind"


def test_case_counts_by_kind(capsys):
    counts = {}
    for c in CASES:
        counts[c.kind] = counts.get(c.kind, 0) + 1
    with capsys.disabled():
        print("\nhostile cases by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
              + f" (total {len(CASES)})")
    assert len(CASES) >= 60
