"""One integration test on the session's real tiny Model Garden export (the `tiny_export`
fixture in tests/garden_fixtures.py): infer with every format, then score on the val records."""

import json
import os

import pytest


def _export_dir(value):
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    for attr in ("export_dir", "output_directory", "saved_model", "path"):
        if hasattr(value, attr):
            return os.fspath(getattr(value, attr))
    raise TypeError(f"unexpected tiny_export value {value!r}")


@pytest.mark.slow
def test_infer_and_score_on_tiny_garden_export(request, tmp_path):
    try:
        export = _export_dir(request.getfixturevalue("tiny_export"))
        model = request.getfixturevalue("tiny_trained_model")
    except pytest.FixtureLookupError:
        pytest.skip("tests/garden_fixtures.py has no tiny_export fixture yet")
    from pycocotools.coco import COCO

    from tfod_seg.evaluation.score import score_model
    from tfod_seg.inference.run import run_inference

    images = sorted(os.path.join(model.labelme_dir, f) for f in os.listdir(model.labelme_dir)
                    if f.endswith((".jpg", ".png")))[:4]
    summary = run_inference(export, images, tmp_path / "pred", min_score=0.05, label_map=model.label_map)
    assert summary.images == 4 and summary.num_skipped == 0
    for sub, ext in (("overlays", ".png"), ("labelme", ".json"), ("semantic", ".png")):
        assert len([f for f in os.listdir(tmp_path / "pred" / sub) if f.endswith(ext)]) == 4
    gt = COCO(str(tmp_path / "pred" / "coco" / "images.json"))
    if summary.detections:
        assert len(gt.loadRes(str(tmp_path / "pred" / "coco" / "results.json")).anns) == summary.detections

    metrics = score_model(export, model.val_records, tmp_path / "score", label_map=model.label_map).to_json()
    for t in ("bbox", "segm"):
        assert 0.0 <= metrics[t]["AP"] <= 1.0 and 0.0 <= metrics[t]["AR100"] <= 1.0
    assert json.loads((tmp_path / "score" / "metrics.json").read_text()) == metrics
    assert (tmp_path / "score" / "pr_segm_iou50.png").stat().st_size > 0
