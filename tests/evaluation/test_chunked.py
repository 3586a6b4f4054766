"""Scoring in chunks of images gives exactly what one COCOeval over the whole dataset gives."""

import copy
import json

import numpy as np
import pytest

from tests.evaluation.synthetic import make_records, random_dataset
from tfod_seg.evaluation.chunked import ChunkedCocoEval
from tfod_seg.evaluation.coco_metrics import confusion_matrix, load_results, quiet, run_cocoeval
from tfod_seg.evaluation.ground_truth import records_to_coco
from tfod_seg.evaluation.inputs import check_inputs
from tfod_seg.evaluation.score import score_coco, score_model
from tfod_seg.labelmap import read_label_map

OUTPUTS = ("metrics.json", "per_class.csv", "pr_curves.csv", "thresholds.csv", "confusion.csv", "report.md")


def _coco(doc):
    from pycocotools.coco import COCO

    c = COCO()
    c.dataset = doc
    quiet(c.createIndex)
    return c


def _results_for(results, iou_type):
    if iou_type == "segm":
        return copy.deepcopy(results)
    return [{k: v for k, v in r.items() if k != "segmentation"} for r in results]


@pytest.fixture(scope="module")
def checked():
    gt, results = random_dataset()
    return check_inputs(gt, results)


def test_the_dataset_has_the_special_cases(checked):
    anns, results = checked.gt_doc["annotations"], checked.results
    per_image = {im["id"]: (0, 0) for im in checked.gt_doc["images"]}
    for a in anns:
        per_image[a["image_id"]] = (per_image[a["image_id"]][0] + 1, per_image[a["image_id"]][1])
    for r in results:
        per_image[r["image_id"]] = (per_image[r["image_id"]][0], per_image[r["image_id"]][1] + 1)
    assert (0, 0) in per_image.values()  # an image with nothing
    assert any(g and not d for g, d in per_image.values()) and any(d and not g for g, d in per_image.values())
    assert max(d for _, d in per_image.values()) > 100  # more than maxDets
    assert any(a["iscrowd"] for a in anns) and len({a["category_id"] for a in anns}) == 3
    areas = [a["area"] for a in anns]
    assert min(areas) < 32 ** 2 and max(areas) > 96 ** 2 and any(32 ** 2 < x < 96 ** 2 for x in areas)
    assert len({r["score"] for r in results}) < len(results) / 5  # many tied scores across images
    assert any(r["category_id"] not in (1, 2, 3) for r in results)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("chunk", [1, 4, 7, 1000])
def test_chunked_cocoeval_equals_whole_dataset(checked, iou_type, chunk):
    gt_doc, results = checked.gt_doc, _results_for(checked.results, iou_type)
    whole_gt = _coco(copy.deepcopy(gt_doc))
    whole = run_cocoeval(whole_gt, load_results(whole_gt, copy.deepcopy(results)), iou_type)
    chunked = ChunkedCocoEval(iou_type, [c["id"] for c in gt_doc["categories"]])
    images = gt_doc["images"]
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk]
        ids = {im["id"] for im in part}
        gt = _coco({"images": part, "annotations": [copy.deepcopy(a) for a in gt_doc["annotations"] if a["image_id"] in ids],
                    "categories": gt_doc["categories"]})
        chunked.add(gt, load_results(gt, [r for r in results if r["image_id"] in ids]))
    ev = chunked.finish()
    for key in ("precision", "recall", "scores"):
        assert np.array_equal(ev.eval[key], whole.eval[key]), key
    assert np.array_equal(ev.stats, whole.stats)
    assert 0 < whole.stats[0] < 1  # not a degenerate case
    assert ev.params.catIds == [1, 2, 3] and len(ev.evalImgs) == 3 * 4 * len(images)


def test_chunks_must_come_in_image_order(checked):
    gt_doc = checked.gt_doc
    chunked = ChunkedCocoEval("bbox", [1, 2, 3])
    for ids in ({5, 6}, {2}):
        gt = _coco({"images": [im for im in gt_doc["images"] if im["id"] in ids], "annotations": [],
                    "categories": gt_doc["categories"]})
        if ids == {2}:
            with pytest.raises(ValueError, match="not above the last chunk's 6"):
                chunked.add(gt, load_results(gt, []))
        else:
            chunked.add(gt, load_results(gt, []))


@pytest.mark.parametrize("variant", ["masks", "one result without a mask", "ground truth without masks"])
def test_score_outputs_do_not_depend_on_chunk_size(tmp_path, variant):
    gt, results = random_dataset()
    if variant == "one result without a mask":
        del results[-1]["segmentation"]  # in the last chunk: segm is dropped after being evaluated
    elif variant == "ground truth without masks":
        for a in gt["annotations"]:
            del a["segmentation"]
    whole = score_coco(copy.deepcopy(gt), copy.deepcopy(results), tmp_path / "whole", chunk_images=1000)
    chunked = score_coco(copy.deepcopy(gt), copy.deepcopy(results), tmp_path / "chunked", chunk_images=3)
    assert chunked == whole
    for name in OUTPUTS:
        assert (tmp_path / "chunked" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    metrics = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    # the whole-dataset reference: one COCOeval, one confusion matrix over everything
    checked = check_inputs(copy.deepcopy(gt), copy.deepcopy(results))
    ref_gt = _coco(checked.gt_doc)
    ev = run_cocoeval(ref_gt, load_results(ref_gt, _results_for(checked.results, "bbox")), "bbox")
    assert metrics["bbox"]["AP"] == round(float(ev.stats[0]), 6) and metrics["bbox"]["AR100"] == round(float(ev.stats[8]), 6)
    segm = variant == "masks"
    assert (metrics["segm"]["AP"] > 0) == segm
    cm = confusion_matrix(ref_gt, checked.results, [1, 2, 3], iou_type="segm" if segm else "bbox")
    rows = [line.split(",")[1:] for line in (tmp_path / "chunked" / "confusion.csv").read_text().splitlines()[1:]]
    assert np.array_equal(np.array(rows, int), cm) and cm.sum() > 0


def test_score_model_in_chunks_streams_the_same_files(tmp_path, fake_boxrel):
    records = make_records(tmp_path, n=5)
    one = score_model(fake_boxrel, records, tmp_path / "one", chunk_images=2).to_json()
    big = score_model(fake_boxrel, records, tmp_path / "big", chunk_images=100).to_json()
    assert one == big and one["segm"]["AP"] == pytest.approx(1.0)
    for name in OUTPUTS + ("gt.json", "results.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "big" / name).read_bytes(), name
    # the streamed gt.json is the document the whole-dataset builder makes, written by json.dumps
    label_map = read_label_map(str(tmp_path / "records" / "label_map.pbtxt"), allow_gaps=True)
    doc = records_to_coco(records, label_map)
    assert (tmp_path / "one" / "gt.json").read_text() == json.dumps(doc) + "\n"
    results = json.loads((tmp_path / "one" / "results.json").read_text())
    assert len(results) == 10 and [r["image_id"] for r in results] == sorted(r["image_id"] for r in results)
    assert (tmp_path / "one" / "results.json").read_text() == json.dumps(results) + "\n"


def test_score_model_streams_to_a_url(tmp_path, fake_boxrel):
    """gt.json and results.json are streamed through local temporary files, then uploaded."""
    import tensorflow as tf

    records = make_records(tmp_path, n=3)
    local = score_model(fake_boxrel, records, tmp_path / "local", chunk_images=2)
    remote = score_model(fake_boxrel, records, "ram://score_model_stream/out", chunk_images=2)
    assert remote == local
    for name in ("gt.json", "results.json", "metrics.json", "confusion.csv"):
        with tf.io.gfile.GFile(f"ram://score_model_stream/out/{name}", "rb") as f:
            assert f.read() == (tmp_path / "local" / name).read_bytes(), name
