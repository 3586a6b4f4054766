import csv
import io
import json

import pytest

from tests.evaluation.synthetic import gt_doc, make_records, predictions
from tfod_seg.cli import main
from tfod_seg.errors import UserError
from tfod_seg.evaluation.coco_metrics import STAT_NAMES
from tfod_seg.evaluation.score import score_coco, score_files, score_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write(tmp_path, gt, results):
    g, r = tmp_path / "gt.json", tmp_path / "results.json"
    g.write_text(json.dumps(gt))
    r.write_text(json.dumps(results))
    return g, r


def test_perfect_predictions_give_ap_1_and_all_outputs(tmp_path):
    gt = gt_doc()
    g, r = _write(tmp_path, gt, predictions(gt))
    out = tmp_path / "out"
    m = score_files(g, r, out).to_json()
    assert set(m) == {"bbox", "segm", "per_class"}
    for t in ("bbox", "segm"):
        assert list(m[t]) == list(STAT_NAMES)
        for name in ("AP", "AP50", "AP75", "APs", "APm", "AR1", "AR100"):
            assert m[t][name] == pytest.approx(1.0), (t, name)
        assert m[t]["APl"] == -1.0  # no large objects: COCO's "undefined"
    assert m["per_class"]["square"]["segm"]["AP"] == pytest.approx(1.0)
    assert m["per_class"]["square"]["best_f1"]["segm"]["threshold"] == pytest.approx(0.9)
    assert json.loads((out / "metrics.json").read_text()) == m
    for tag in ("segm_iou50", "segm_iou75", "bbox_iou50", "bbox_iou75"):
        png = (out / f"pr_{tag}.png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 5000
        assert f"pr_{tag}.png" in (out / "report.md").read_text()
    assert (out / "confusion.png").read_bytes().startswith(PNG_MAGIC)
    rows = list(csv.DictReader(io.StringIO((out / "pr_curves.csv").read_text())))
    assert {(r["iou_type"], r["iou"], r["class"]) for r in rows} >= {("segm", "0.5", "all"), ("bbox", "0.75", "bar")}
    cm = list(csv.reader(io.StringIO((out / "confusion.csv").read_text())))
    assert cm[1] == ["square", "3", "0", "0"] and cm[3] == ["background", "0", "0", "0"]


def test_shift_with_iou_between_050_and_075(tmp_path):
    gt = gt_doc()
    # 40 px wide square moved 10 px: IoU 30/50 = 0.6; 20 px bar moved 10 px: IoU 10/30 = 0.33
    m = score_coco(gt, predictions(gt, dx=10), tmp_path).to_json()
    sq = m["per_class"]["square"]
    for t in ("bbox", "segm"):
        assert sq[t]["AP50"] == pytest.approx(1.0) and sq[t]["AP75"] == 0.0
        assert m["per_class"]["bar"][t]["AP50"] == 0.0
        assert m[t]["AP50"] == pytest.approx(0.5) and m[t]["AP75"] == 0.0
    cm = list(csv.reader(io.StringIO((tmp_path / "confusion.csv").read_text())))
    # the bars are missed (true bar -> background) and their detections are spurious
    assert cm[2] == ["bar", "0", "0", "3"] and cm[3] == ["background", "0", "3", "0"]


def test_empty_predictions_give_zero(tmp_path):
    gt = gt_doc()
    g, r = _write(tmp_path, gt, [])
    m = score_files(g, r, tmp_path / "out").to_json()
    assert m["segm"]["AP"] == 0.0 and m["bbox"]["AR100"] == 0.0
    assert m["per_class"]["bar"]["best_f1"]["segm"] is None
    assert (tmp_path / "out" / "pr_segm_iou50.png").stat().st_size > 0


def test_best_f1_threshold_and_confusion_of_swapped_classes(tmp_path):
    gt = gt_doc()
    good = predictions(gt, score=0.8)
    # a confident false positive per image (square class, far from everything) at 0.95
    fp = [dict(p, score=0.95) for p in predictions(gt, dx=60) if p["category_id"] == 1]
    m = score_coco(gt, good + fp, tmp_path / "a").to_json()
    bf = m["per_class"]["square"]["best_f1"]["segm"]
    assert bf["threshold"] == pytest.approx(0.8) and bf["recall"] == pytest.approx(1.0)
    assert bf["precision"] == pytest.approx(0.5)
    m = score_coco(gt, predictions(gt, category_map={1: 2, 2: 1}), tmp_path / "b").to_json()
    assert m["segm"]["AP"] == 0.0
    cm = list(csv.reader(io.StringIO((tmp_path / "b" / "confusion.csv").read_text())))
    assert cm[1] == ["square", "0", "3", "0"] and cm[2] == ["bar", "3", "0", "0"]


def test_results_without_masks_score_boxes_only(tmp_path):
    gt = gt_doc()
    res = [{k: v for k, v in p.items() if k != "segmentation"} for p in predictions(gt)]
    m = score_coco(gt, res, tmp_path).to_json()
    assert m["bbox"]["AP"] == pytest.approx(1.0) and m["segm"]["AP"] == -1.0
    assert "predictions have no masks" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("gt,results,match", [
    (None, [], "COCO ground-truth JSON file not found"),
    ({"images": []}, [], "lacks \\['annotations', 'categories'\\]"),
    ("GT", {"x": 1}, "expected a JSON list of COCO results"),
    ("GT", [{"image_id": 99, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1]}], "image_id 99 \\(int\\), which is not in the ground truth \\(3 images, ids 1..3\\)"),
    ("GT", [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}], "result #0 has no 'score'"),
])
def test_bad_files(tmp_path, gt, results, match):
    g, r = tmp_path / "gt.json", tmp_path / "results.json"
    if gt is not None:
        g.write_text(json.dumps(gt_doc() if gt == "GT" else gt))
    r.write_text(json.dumps(results))
    with pytest.raises(UserError, match=match):
        score_files(g, r, tmp_path / "out")


def test_bad_json_names_line(tmp_path):
    g = tmp_path / "gt.json"
    g.write_text('{"images": [\n  oops]}')
    with pytest.raises(UserError, match=r"gt.json:2:3: not valid JSON"):
        score_files(g, g, tmp_path / "out")


def test_score_model_on_records(tmp_path, fake_boxrel):
    records = make_records(tmp_path)
    out = tmp_path / "score"
    m = score_model(fake_boxrel, records, out).to_json()
    # the fake model finds the coloured shapes exactly: AP 1 for boxes and masks
    assert m["segm"]["AP"] == pytest.approx(1.0) and m["bbox"]["AP"] == pytest.approx(1.0)
    assert m["per_class"]["blue"]["num_gt"] == 0 and m["per_class"]["blue"]["segm"]["AP"] == -1.0
    gt = json.loads((out / "gt.json").read_text())
    assert len(gt["images"]) == 3 and len(gt["annotations"]) == 6
    assert [c["name"] for c in gt["categories"]] == ["red", "green", "blue"]
    # the written gt.json + results.json score the same through the file form (the CLI)
    rc = main(["score", "--gt", str(out / "gt.json"), "--predictions", str(out / "results.json"),
               "--out", str(tmp_path / "again")])
    assert rc == 0
    assert json.loads((tmp_path / "again" / "metrics.json").read_text()) == m


def test_score_model_batched_streams_like_unbatched(tmp_path, fake_batched):
    records = make_records(tmp_path, n=4)
    one = score_model(fake_batched, records, tmp_path / "one", batch_size=1, workers=1).to_json()
    two = score_model(fake_batched, records, tmp_path / "two", batch_size=2, workers=3).to_json()
    assert one == two and one["segm"]["AP"] == pytest.approx(1.0)
    # same predictions, in the same order, whatever the batch size and thread count
    assert (tmp_path / "one" / "results.json").read_bytes() == (tmp_path / "two" / "results.json").read_bytes()
    assert len(json.loads((tmp_path / "two" / "results.json").read_text())) == 8


def test_score_cli_model_form_and_usage_errors(tmp_path, fake_boxrel, capsys):
    records = make_records(tmp_path, n=1)
    rc = main(["score", "--model", fake_boxrel, "--records", records, "--out", str(tmp_path / "o"), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "mask AP" in out and "metrics.json" in out
    assert main(["score", "--model", fake_boxrel, "--out", str(tmp_path / "o")]) == 2
    assert "--records" in capsys.readouterr().err
    assert main(["score", "--model", fake_boxrel, "--records", str(tmp_path / "none-*.tfrecord"), "--out", str(tmp_path / "p")]) == 2
    assert "no file matches" in capsys.readouterr().err


def test_files_on_ram_filesystem(tmp_path):
    """--gt, --predictions and --out as ram:// URLs (the gs:// code path), same metrics."""
    import tensorflow as tf

    gt = gt_doc()
    tf.io.gfile.makedirs("ram://score_test")
    for name, doc in (("gt.json", gt), ("results.json", predictions(gt, dx=10))):
        with tf.io.gfile.GFile(f"ram://score_test/{name}", "w") as f:
            f.write(json.dumps(doc))
    m = score_files("ram://score_test/gt.json", "ram://score_test/results.json", "ram://score_test/out")
    local = score_coco(gt, predictions(gt, dx=10), tmp_path / "local")
    assert m == local and m.segm["AP50"] == pytest.approx(0.5)
    assert json.loads(tf.io.gfile.GFile("ram://score_test/out/metrics.json").read()) == m.to_json()
    for name in ("report.md", "pr_segm_iou50.png", "confusion.csv", "per_class.csv", "thresholds.csv"):
        assert tf.io.gfile.exists(f"ram://score_test/out/{name}"), name
