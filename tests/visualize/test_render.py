import json

import numpy as np
import pytest
from PIL import Image

from tests.evaluation.synthetic import H, W, gt_doc, make_records, predictions
from tfod_seg.cli import main
from tfod_seg.errors import UserError
from tfod_seg.inference.draw import draw_instances, instance_colors, semantic_map
from tfod_seg.visualize.render import render


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return make_records(tmp_path_factory.mktemp("rec"), n=2)


def _png(path):
    return np.asarray(Image.open(path))


def test_records_with_model_side_by_side(tmp_path, records, fake_boxrel):
    s = render(tmp_path / "both", records=records, model=fake_boxrel)
    assert s["written"] == 2 and s["with_gt"] and s["with_predictions"]
    both = _png(tmp_path / "both" / "s0.png")
    render(tmp_path / "gt", records=records)
    gt = _png(tmp_path / "gt" / "s0.png")
    assert gt.shape[1] == 64 and both.shape[1] > 2 * 64  # two panels and a gap
    assert gt.shape[0] > 48  # title strip above the image
    # left panel of the side-by-side is the ground-truth panel
    np.testing.assert_array_equal(both[:, :64], gt)


def test_results_json_matched_through_gt_json(tmp_path, records, fake_boxrel):
    from tfod_seg.evaluation.score import score_model

    score_model(fake_boxrel, records, tmp_path / "score")
    render(tmp_path / "a", records=records, predictions=tmp_path / "score" / "results.json")
    render(tmp_path / "b", records=records, model=fake_boxrel)
    a, b = _png(tmp_path / "a" / "s1.png"), _png(tmp_path / "b" / "s1.png")
    assert a.shape == b.shape
    # same detections drawn either way (masks identical; only label text may differ)
    assert np.mean(a != b) < 0.02


def test_infer_outputs_visualised(tmp_path, fake_boxrel):
    from tests.inference.fake_export import shapes_image
    from tfod_seg.inference.run import run_inference

    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(2):
        Image.fromarray(shapes_image()[0]).save(d / f"p{i}.png")
    run_inference(fake_boxrel, str(d), tmp_path / "pred", formats=["coco", "labelme"])
    s = render(tmp_path / "v1", images=str(d), predictions=tmp_path / "pred" / "coco" / "results.json")
    assert s["written"] == 2 and s["unmatched_predictions"] == 0 and not s["with_gt"]
    panel = _png(tmp_path / "v1" / "p0.png")
    assert not np.array_equal(panel[-48:], shapes_image()[0])  # detections were drawn
    # LabelMe predictions read back as ground truth
    s = render(tmp_path / "v2", labelme=tmp_path / "pred" / "labelme")
    assert s["written"] == 2


def test_coco_ground_truth_with_predictions(tmp_path):
    gt = gt_doc(num_images=2)
    for im in gt["images"]:
        Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(tmp_path / im["file_name"])
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    res = tmp_path / "res"
    res.mkdir()
    (res / "results.json").write_text(json.dumps(predictions(gt, dx=5)))
    rc = main(["visualize", "--coco", str(tmp_path / "gt.json"), "--predictions", str(res / "results.json"),
               "--out", str(tmp_path / "v"), "--no-progress"])
    assert rc == 0
    out = _png(tmp_path / "v" / "im0.png")
    assert out.shape[1] == 2 * W + 6
    # ground truth read through the COCO reader; predictions matched by the COCO image ids
    s = render(tmp_path / "v2", coco=tmp_path / "gt.json", predictions=res / "results.json")
    assert s["written"] == 2 and s["unmatched_predictions"] == 0
    both = _png(tmp_path / "v2" / "im1.png")
    strip = both.shape[0] - H
    gt_panel, pred_panel = both[strip:, :W], both[strip:, W + 6:]
    assert (gt_panel != 90).any(axis=2).sum() > 500 and (pred_panel != 90).any(axis=2).sum() > 500
    # the prediction panel is the ground truth moved 5 px right: the drawings differ
    assert not np.array_equal(gt_panel, pred_panel)


def test_usage_errors(tmp_path, records, fake_boxrel):
    with pytest.raises(UserError, match="exactly one image source"):
        render(tmp_path, records=records, labelme=tmp_path)
    with pytest.raises(UserError, match="no ground truth"):
        render(tmp_path, images=str(tmp_path))
    with pytest.raises(UserError, match="at most one of --model and --predictions"):
        render(tmp_path, records=records, model=fake_boxrel, predictions="x.json")


def test_drawing_helpers():
    colors = instance_colors(12)
    assert len({tuple(c) for c in colors}) == 12
    img = np.zeros((40, 50, 3), np.uint8)
    masks = np.zeros((2, 40, 50), np.uint8)
    masks[0, 5:20, 5:20] = 1
    masks[1, 10:30, 10:40] = 1
    drawn = draw_instances(img, masks=masks, boxes=np.array([[5, 5, 20, 20], [10, 10, 40, 30]]), labels=["a", "b"],
                           scores=[0.9, 0.5])
    assert drawn[25, 35].any() and not drawn[38, 2].any()
    sem = semantic_map(masks, [3, 7], scores=[0.9, 0.5])
    assert sem[12, 12] == 3 and sem[25, 35] == 7 and sem[0, 0] == 0  # overlap goes to the higher score
