"""Table-driven bad input: each case gives a clear message naming the file and the problem
(exit status 2, no traceback), or a skip counted in report.json (and exit 2 under --strict)."""

import json
import os

import pytest

from tests.data.fixtures import square, write_jpeg
from tfod_seg.annotations.labelme import write_labelme
from tfod_seg.cli import main
from tfod_seg.labelmap import LabelMap

W, H = 40, 30


def _labelme(tmp, shapes=None, image_path="a.jpg", height=H, width=W, json_text=None, jpeg_cut=None):
    root = tmp / "lm"
    data = write_jpeg(root / "a.jpg", W, H)
    if jpeg_cut:
        (root / "a.jpg").write_bytes(data[: len(data) // jpeg_cut])
    if json_text is not None:
        (root / "a.json").write_text(json_text)
    else:
        write_labelme(root / "a.json", image_path=image_path, height=height, width=width,
                      shapes=shapes if shapes is not None else [{"label": "x", "points": square(2, 2, 10)}])
    return ["--format", "labelme", str(root)]


def _coco(tmp, mutate):
    root = tmp / "coco"
    write_jpeg(root / "a.jpg", W, H)
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "height": H, "width": W}],
           "categories": [{"id": 1, "name": "x"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [2, 2, 10, 10],
                            "area": 100, "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]}]}
    mutate(doc)
    (root / "ann.json").write_text(json.dumps(doc))
    return ["--format", "coco", str(root / "ann.json"), "--image-dir", str(root)]


def _rle_wrong_size(d):
    d["annotations"][0]["segmentation"] = {"counts": [0, 10, (H + 1) * W - 10], "size": [H + 1, W]}


def _label_map_extra(tmp):
    LabelMap.from_names(["y"]).write(tmp / "lm.pbtxt")
    return ["--label-map", str(tmp / "lm.pbtxt")]


# id, input builder, extra flags builder, expected: ("error", fragment) | ("skip", kind, fragment) | ("note", kind, fragment)
CASES = [
    ("labelme_malformed_json", lambda t: _labelme(t, json_text='{"shapes": [,]}'), None,
     ("skip", "malformed_json", "a.json: malformed JSON at line 1 column 13")),
    ("coco_malformed_json", lambda t: _coco(t, lambda d: None) and (t / "coco" / "ann.json").write_text("{oops")
     and ["--format", "coco", str(t / "coco" / "ann.json")], None,
     ("error", "ann.json: malformed JSON at line 1 column 2")),
    ("labelme_missing_image", lambda t: _labelme(t, image_path="gone.jpg"), None,
     ("skip", "missing_image", "a.json: image file not found")),
    ("coco_missing_image", lambda t: _coco(t, lambda d: d["images"][0].update(file_name="gone.jpg")), None,
     ("skip", "missing_image", "ann.json: image id 1 ('gone.jpg'): image file not found")),
    ("image_size_differs", lambda t: _labelme(t, height=H + 10), None,
     ("skip", "image_size_mismatch", "a.json: image size differs from the annotation: annotation says 40x40 (WxH), "
                                     "the image is 40x30")),
    ("polygon_two_points", lambda t: _labelme(t, shapes=[{"label": "x", "points": [[1, 1], [5, 5]]}]), None,
     ("skip", "too_few_points", "a.json: shape 0 'x': polygon with 2 points (need at least 3)")),
    ("coco_polygon_two_points", lambda t: _coco(t, lambda d: d["annotations"][0].update(segmentation=[[1, 1, 5, 5]])),
     None, ("skip", "too_few_points", "annotation id 1: polygon part 0 has 2 points")),
    ("outside_image", lambda t: _labelme(t, shapes=[{"label": "x", "points": square(100, 100, 5)}]), None,
     ("skip", "outside_image", "a.json: shape 0 'x' lies entirely outside the 40x30 image")),
    ("zero_area", lambda t: _labelme(t, shapes=[{"label": "x", "points": [[1, 1], [5, 1], [9, 1]]}]), None,
     ("skip", "zero_area", "a.json: shape 0 'x': polygon has zero area")),
    ("coco_zero_area", lambda t: _coco(t, lambda d: d["annotations"][0].update(bbox=[2, 2, 0, 10])), None,
     ("skip", "zero_area", "annotation id 1: bbox [2, 2, 0, 10] has zero or negative width/height")),
    ("unknown_label_with_label_map", lambda t: _labelme(t), _label_map_extra,
     ("skip", "unknown_label", "a.json: instance 0 label 'x' is not in the label map")),
    ("category_id_0", lambda t: _coco(t, lambda d: (d["categories"][0].update(id=0),
                                                     d["annotations"][0].update(category_id=0))), None,
     ("note", "category_id_0", "category id 0 ('x') remapped to contiguous id 1")),
    ("duplicate_image_ids", lambda t: _coco(t, lambda d: d["images"].append(dict(d["images"][0], file_name="b.jpg"))),
     None, ("error", "ann.json: images[1]: duplicate image id 1 ('a.jpg' and 'b.jpg')")),
    ("annotation_missing_image_id", lambda t: _coco(t, lambda d: d["annotations"][0].update(image_id=99)), None,
     ("skip", "missing_image_id", "ann.json: annotation id 1 points to image id 99, which is not in 'images'")),
    ("rle_size_differs", lambda t: _coco(t, _rle_wrong_size), None,
     ("skip", "rle_size_mismatch", "RLE size [h, w]=[31, 40] differs from the image size [30, 40]")),
    ("truncated_jpeg", lambda t: _labelme(t, jpeg_cut=3), None,
     ("skip", "bad_image", "image file is truncated")),
    ("path_traversal", lambda t: _labelme(t, image_path="../../../../etc/passwd"), None,
     ("skip", "path_outside_root", "a.json: imagePath '../../../../etc/passwd' escapes the dataset root")),
    ("not_a_folder", lambda t: ["--format", "labelme", str(t / "nowhere")], None,
     ("error", "nowhere: not a directory of LabelMe JSON files")),
    ("unknown_category_id", lambda t: _coco(t, lambda d: d["annotations"][0].update(category_id=5)), None,
     ("skip", "unknown_category", "annotation id 1: category_id 5 is not in 'categories'")),
]


@pytest.mark.parametrize("name,build,extra,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path, capsys, name, build, extra, expected):
    args = build(tmp_path) + (extra(tmp_path) if extra else [])
    out = tmp_path / "out"
    base = ["convert", *args, "--out", str(out), "--workers", "1", "--quiet"]
    rc = main(base)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if expected[0] == "error":
        assert rc == 2
        assert captured.err.startswith("error: ") and expected[1] in captured.err, captured.err
        return
    assert rc == 0, captured.err
    report = json.load(open(out / "report.json"))
    kind, fragment = expected[1], expected[2]
    if expected[0] == "note":
        notes = [n for n in report["notes"] if n["kind"] == kind]
        assert notes and fragment in notes[0]["reason"]
        return
    assert report["skipped_by_reason"].get(kind) == 1, report["skipped"]
    (rec,) = [r for r in report["skipped"] if r["kind"] == kind]
    assert fragment in f"{rec['file']}: {rec['reason']}", rec
    # --strict turns the same skip into a failure that names the file and the problem
    rc = main(base[:-1] + ["--quiet", "--strict", "--out", str(tmp_path / "strict")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.startswith("error: ") and fragment in err, err
    assert not [f for f in os.listdir(tmp_path / "strict") if f.endswith(".tfrecord")] \
        if os.path.isdir(tmp_path / "strict") else True
