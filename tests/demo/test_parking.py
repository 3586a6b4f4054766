"""The parking demo's pieces: generated street scenes (deterministic, truth consistent with the
drawings), violation precision/recall matching, and IoU tables. The end-to-end run (two
trainings) is measured by hand (docs/parking.md); tests/zones/test_semantic.py trains the
scene model for a few steps."""

import json
import os

import numpy as np

from tfod_seg.annotations.labelme import read_labelme_shapes
from tfod_seg.data.masks import rasterize
from tfod_seg.demo.parking import _iou_table, violation_scores
from tfod_seg.demo.streets import PLACEMENTS, RULES, generate_streets


def test_streets_are_deterministic_and_truth_matches_the_drawings(tmp_path):
    a = generate_streets(str(tmp_path / "a"), 20, size=96, seed=5)
    b = generate_streets(str(tmp_path / "b"), 20, size=96, seed=5)
    ta, tb = (json.load(open(os.path.join(p, "truth.json"))) for p in (a["out_dir"], b["out_dir"]))
    assert ta == tb and ta["rules"] == list(RULES)
    assert open(os.path.join(a["out_dir"], "images", "street_00003.png"), "rb").read() == \
        open(os.path.join(b["out_dir"], "images", "street_00003.png"), "rb").read()
    assert a["violations"] > 0 and a["cars"] > a["violations"]
    for stem, cars in ta["images"].items():
        base = os.path.splitext(stem)[0]
        h, w, zones, _ = read_labelme_shapes(os.path.join(a["out_dir"], "scene", base + ".json"))
        _, _, car_shapes, _ = read_labelme_shapes(os.path.join(a["out_dir"], "cars", base + ".json"))
        assert len(car_shapes) == len(cars)
        maps = {}
        for z in zones:
            maps[z.label] = maps.get(z.label, np.zeros((h, w), bool)) | rasterize(z.mask, h, w).astype(bool)
        for shape, car in zip(car_shapes, cars):
            assert car["placement"] in PLACEMENTS
            mask = rasterize(shape.mask, h, w).astype(bool)
            inside = (maps["no_parking"] & mask).sum() / mask.sum()
            assert abs(inside - car["overlaps"]["no_parking"]) < 0.08  # the drawn polygon vs the painted car
            if car["placement"] in ("bay", "two_bays", "road"):
                assert car["verdict"] == "ok", car
            if car["placement"] == "no_parking_edge":
                assert 0.3 <= car["overlaps"]["no_parking"] <= 0.75 and car["verdict"] == "violation"


def test_violation_scores_match_cars_by_box():
    truth = {"a.png": [{"box": [0, 0, 10, 10], "verdict": "violation"}, {"box": [20, 0, 30, 10], "verdict": "ok"},
                       {"box": [40, 0, 50, 10], "verdict": "violation"}]}
    dets = [{"image": "dir/a.png", "box": [0, 0, 10, 10], "score": 0.9, "verdict": "violation"},   # TP
            {"image": "dir/a.png", "box": [21, 0, 10, 10], "score": 0.8, "verdict": "violation"},  # FP: truth ok
            {"image": "dir/a.png", "box": [40, 0, 10, 10], "score": 0.7, "verdict": "ok"},         # FN
            {"image": "dir/a.png", "box": [80, 80, 5, 5], "score": 0.6, "verdict": "violation"}]   # FP: no car
    got = violation_scores(dets, truth)
    assert got == {"violations_true": 2, "violations_predicted": 3, "true_positives": 1, "precision": 0.3333,
                   "recall": 0.5}


def test_iou_table():
    t = np.array([[1, 1, 2, 2]])
    p = np.array([[1, 2, 2, 2]])
    got = _iou_table([t], [p], {1: "road", 2: "sidewalk", 3: "parking"})
    assert got["iou"] == {"road": 0.5, "sidewalk": 0.6667} and got["mIoU"] == round((0.5 + 2 / 3) / 2, 4)
