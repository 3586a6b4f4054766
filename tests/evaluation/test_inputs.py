"""COCO inputs are checked and renumbered before pycocotools (issue: ids from 0 scored 0.949)."""

import copy
import json

import numpy as np
import pytest

from tests.evaluation.synthetic import gt_doc, predictions
from tfod_seg.cli import main
from tfod_seg.errors import UserError
from tfod_seg.evaluation.inputs import check_inputs, rle_counts
from tfod_seg.evaluation.score import score_coco, score_files


def _shift_ids(gt, preds, image_offset, ann_offset):
    gt = copy.deepcopy(gt)
    for im in gt["images"]:
        im["id"] += image_offset
    for a in gt["annotations"]:
        a["id"] += ann_offset
        a["image_id"] += image_offset
    preds = [dict(p, image_id=p["image_id"] + image_offset) for p in preds]
    return gt, preds


@pytest.mark.parametrize("image_offset,ann_offset", [(-1, -1), (0, -1), (-1, 0), (99, 4999)])
def test_exact_predictions_score_one_whatever_the_ids(tmp_path, image_offset, ann_offset):
    """labelme2coco writes image and annotation ids from 0; pycocotools treats annotation id 0
    as 'unmatched' (AP 0.949 before renumbering). Exact predictions must give AP 1.0."""
    gt, preds = _shift_ids(gt_doc(), predictions(gt_doc()), image_offset, ann_offset)
    assert min(a["id"] for a in gt["annotations"]) == ann_offset + 1
    m = score_coco(gt, preds, tmp_path)
    for t in ("bbox", "segm"):
        assert m.to_json()[t]["AP"] == pytest.approx(1.0), t
        assert m.to_json()[t]["AR100"] == pytest.approx(1.0), t


def test_ids_from_zero_through_the_cli(tmp_path, capsys):
    gt, preds = _shift_ids(gt_doc(), predictions(gt_doc()), -1, -1)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(preds))
    rc = main(["score", "--gt", str(tmp_path / "gt.json"), "--predictions", str(tmp_path / "res.json"),
               "--out", str(tmp_path / "out")])
    assert rc == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["segm"]["AP"] == pytest.approx(1.0) and metrics["bbox"]["AP"] == pytest.approx(1.0)


def test_string_image_ids_match_only_their_own_type(tmp_path):
    gt = gt_doc()
    for im in gt["images"]:
        im["id"] = f"img-{im['id']}"
    for a in gt["annotations"]:
        a["image_id"] = f"img-{a['image_id']}"
    preds = [dict(p, image_id=f"img-{p['image_id']}") for p in predictions(gt_doc())]
    assert score_coco(gt, preds, tmp_path / "a").segm["AP"] == pytest.approx(1.0)
    with pytest.raises(UserError, match=r"result #0 has image_id '1' \(str\), which is not in the ground truth"):
        score_coco(gt_doc(), [dict(p, image_id=str(p["image_id"])) for p in predictions(gt_doc())], tmp_path / "b")


def test_polygon_predictions_and_missing_area_bbox(tmp_path):
    gt = gt_doc()
    for a in gt["annotations"]:
        del a["area"]
    preds = []
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        preds.append({"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9,
                      "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]]})
    m = score_coco(gt, preds, tmp_path)
    assert m.segm["AP50"] == pytest.approx(1.0) and m.bbox["AP50"] == pytest.approx(1.0)


def test_rle_counts_matches_pycocotools():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        rle = mask_utils.encode(np.asfortranarray(m))
        runs = rle_counts(rle["counts"].decode())
        assert sum(runs) == h * w and sum(runs[1::2]) == int(m.sum())
    with pytest.raises(ValueError):
        rle_counts("\x7f")


def _gt_with(path, value):
    gt = gt_doc()
    node = gt
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return gt


# (what is broken, ground truth, results, exact message fragment)
BAD_INPUTS = [
    ("gt images not a list", _gt_with(("images",), {"id": 1}), [], "'images' is {'id': 1} (dict); expected a JSON list"),
    ("gt image id a list", _gt_with(("images", 0, "id"), [1]), [], "images[0] 'id' is [1] (list); expected an integer"),
    ("gt duplicate image id", _gt_with(("images", 1, "id"), 1), [], "images[1] 'id' is 1 (int); expected an id no other"),
    ("gt image without height", _gt_with(("images", 0, "height"), "100"), [], "'height' is '100' (str); expected a positive"),
    ("gt category id a string", _gt_with(("categories", 0, "id"), "1"), [], "categories[0] 'id' is '1' (str)"),
    ("gt annotation image_id a list", _gt_with(("annotations", 0, "image_id"), [1]), [],
     "annotations[0] 'image_id' is [1] (list); expected the id of an entry of 'images'"),
    ("gt annotation category_id unknown", _gt_with(("annotations", 0, "category_id"), 7), [],
     "annotations[0] 'category_id' is 7 (int); expected one of the category ids [1, 2]"),
    ("gt iscrowd a string", _gt_with(("annotations", 0, "iscrowd"), "0"), [], "annotations[0] 'iscrowd' is '0' (str); expected 0 or 1"),
    ("gt bbox with NaN", _gt_with(("annotations", 0, "bbox"), [0, 0, float("nan"), 4]), [],
     "annotations[0] 'bbox' is [0, 0, nan, 4] (list); expected [x, y, w, h]: four finite numbers"),
    ("gt garbage RLE", _gt_with(("annotations", 0, "segmentation"), {"size": [100, 120], "counts": "garbage!!"}), [],
     "annotations[0] 'segmentation.counts' is 'garbage!!' (str); expected a COCO RLE string of 100x120 pixels"),
    ("gt RLE of another size", _gt_with(("annotations", 0, "segmentation", "size"), [50, 60]), [],
     "annotations[0] 'segmentation.size' is [50, 60] (list); expected [100, 120]"),
    ("result not an object", None, ["x"], "result #0 is 'x' (str); expected a JSON object"),
    ("result image_id a list", None, [{"image_id": [1], "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1]}],
     "result #0 has image_id [1] (list), which is not in the ground truth"),
    ("result category_id a string", None, [{"image_id": 1, "category_id": "1", "score": 1, "bbox": [0, 0, 1, 1]}],
     "result #0 'category_id' is '1' (str); expected an integer category id"),
    ("result score a string", None, [{"image_id": 1, "category_id": 1, "score": "high", "bbox": [0, 0, 1, 1]}],
     "result #0 'score' is 'high' (str); expected a finite number"),
    ("result bbox of three", None, [{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1]}],
     "result #0 'bbox' is [0, 0, 1] (list); expected [x, y, w, h]"),
    ("result polygon of two points", None, [{"image_id": 1, "category_id": 1, "score": 1, "segmentation": [[0, 0, 1, 1]]}],
     "result #0 'segmentation' is [[0, 0, 1, 1]] (list); expected a list of polygons"),
]


@pytest.mark.parametrize("what,gt,results,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_name_file_entry_field_and_value(tmp_path, capsys, what, gt, results, message):
    g, r = tmp_path / "gt.json", tmp_path / "results.json"
    g.write_text(json.dumps(gt if gt is not None else gt_doc()))
    r.write_text(json.dumps(results))
    out = tmp_path / "out"
    rc = main(["score", "--gt", str(g), "--predictions", str(r), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.startswith(f"error: {g if gt is not None else r}: "), err
    assert message in err, err
    assert not (out / "metrics.json").exists()


def test_non_utf8_and_wrong_top_level(tmp_path, capsys):
    g = tmp_path / "gt.json"
    g.write_bytes(b'{"images": [], "annotations": [], "categories": [{"id": 1, "name": "caf\xe9"}]}')
    with pytest.raises(UserError, match=r"gt.json: not a UTF-8 text file"):
        score_files(g, g, tmp_path / "o")
    g.write_text("[1, 2]")
    with pytest.raises(UserError, match="expected a COCO dataset object"):
        check_inputs([1, 2], [], "gt.json")
