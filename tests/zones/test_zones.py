"""Known answers for `tfod-seg zones`: masks, not boxes; 40 % inside is a violation under
>=0.3; zones drawn on a frame of another size; clear errors for bad rules and frames."""

import csv
import json
import os

import numpy as np
import pytest

from tests.zones.helpers import block, l_shaped_car, write_predictions, write_zone_drawing
from tfod_seg.cli import main
from tfod_seg.zones import load_drawn_zones, zone_fractions
from tfod_seg.zones.maps import ZoneError

H, W = 80, 120
ZONES = {"no_parking": (40, 0, 120, 40), "sidewalk": (0, 70, 120, 80)}


def _rows(out):
    with open(os.path.join(out, "violations.csv")) as f:
        return list(csv.DictReader(f))


def _run(tmp_path, zones_path, masks, classes, rules, extra=()):
    res, gt = write_predictions(str(tmp_path), H, W, masks, classes, [0.9, 0.8, 0.7][:len(masks)])
    out = str(tmp_path / "out")
    argv = ["zones", "--zones", zones_path, "--predictions", res, "--gt", gt, "--out", out, "--no-progress"]
    for r in rules:
        argv += ["--rule", r]
    return main(argv + list(extra)), out


def test_box_overlap_without_mask_overlap_is_not_a_violation(tmp_path):
    zones = write_zone_drawing(tmp_path / "frame.json", H, W, ZONES)
    car = l_shaped_car(H, W)  # its box covers x 40..59, y 10..39 of no_parking; its mask none of it
    rc, out = _run(tmp_path, zones, [car], [1], ["car:no_parking>=0.01"])
    assert rc == 0
    row = [r for r in _rows(out) if r["zone"] == "no_parking"][0]
    assert (row["overlap"], row["verdict"], row["rule"]) == ("0.0", "ok", "car:no_parking>=0.01")
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["violations"] == 0 and summary["detections"] == 1


def test_forty_percent_inside_is_a_violation_under_point_three(tmp_path):
    zones = write_zone_drawing(tmp_path / "frame.json", H, W, ZONES)
    car = block(H, W, 60, 30, 110, 55)  # rows 30..54: 10 of 25 rows above y=40 -> 40 %
    person = block(H, W, 0, 60, 20, 80)  # half on the sidewalk, no rule for persons
    rc, out = _run(tmp_path, zones, [car, person], [1, 2], ["car:no_parking>=0.3", "car:no_parking>=0.5"])
    assert rc == 0
    rows = {(r["detection"], r["zone"], r["rule"]): r for r in _rows(out)}
    assert rows[("1", "no_parking", "car:no_parking>=0.3")]["verdict"] == "violation"
    assert rows[("1", "no_parking", "car:no_parking>=0.3")]["overlap"] == "0.4"
    assert rows[("1", "no_parking", "car:no_parking>=0.5")]["verdict"] == "ok"
    assert rows[("2", "sidewalk", "")]["overlap"] == "0.5" and rows[("2", "sidewalk", "")]["verdict"] == "ok"
    doc = json.load(open(os.path.join(out, "violations.json")))
    assert {"image", "detection", "class", "score", "zone", "overlap", "rule", "verdict"} <= set(doc[0])
    dets = json.load(open(os.path.join(out, "detections.json")))
    assert dets[0]["verdict"] == "violation" and dets[0]["violated_rules"] == ["car:no_parking>=0.3"]
    assert dets[1]["overlaps"] == {"no_parking": 0.0, "sidewalk": 0.5}
    summary = json.load(open(os.path.join(out, "summary.json")))
    per_zone = {z["zone"]: z for z in summary["per_zone"]}
    assert per_zone["no_parking"]["violations"] == 1 and per_zone["sidewalk"]["violations"] == 0
    assert summary["violations_per_rule"] == {"car:no_parking>=0.3": 1, "car:no_parking>=0.5": 0}


def test_zones_drawn_on_a_bigger_frame_are_scaled(tmp_path):
    big = write_zone_drawing(tmp_path / "big.json", 2 * H, 2 * W,
                             {k: tuple(2 * v for v in g) for k, g in ZONES.items()})
    small = write_zone_drawing(tmp_path / "small.json", H, W, ZONES)
    np.testing.assert_array_equal(load_drawn_zones(big).zones_for(H, W)["no_parking"],
                                  load_drawn_zones(small).zones_for(H, W)["no_parking"])
    car = block(H, W, 60, 30, 110, 55)
    rc, out = _run(tmp_path, big, [car], [1], ["car:no_parking>=0.3"])
    assert rc == 0 and _rows(out)[0]["overlap"] == "0.4" and _rows(out)[0]["verdict"] == "violation"


def test_polygon_zone_scaled_to_a_smaller_frame_keeps_its_share(tmp_path):
    # A triangle covering half of a 480x320 frame; at 120x80 (and at 1.5x) it still covers half.
    path = write_zone_drawing(tmp_path / "tri.json", 320, 480, {"bay": [(0, 0), (480, 0), (480, 320)]})
    zones = load_drawn_zones(path)
    for h, w in ((80, 120), (480, 720), (81, 121)):  # 121x81: rounding of a downscaled frame
        share = zones.zones_for(h, w)["bay"].mean()
        assert abs(share - 0.5) < 0.02, (h, w, share)
        assert zones.zones_for(h, w)["bay"][0, w - 1] and not zones.zones_for(h, w)["bay"][h - 1, 0]


def test_zones_of_another_aspect_are_refused(tmp_path, capsys):
    square = write_zone_drawing(tmp_path / "square.json", 100, 100, {"no_parking": (0, 0, 50, 50)})
    with pytest.raises(ZoneError, match=r"drawn on a 100x100 frame \(aspect 1.000\) but image is 120x80"):
        load_drawn_zones(square).zones_for(80, 120)
    rc, _ = _run(tmp_path, square, [block(H, W, 0, 0, 10, 10)], [1], ["car:no_parking>=0.3"])
    assert rc == 2
    assert "draw the zones on a frame of this camera" in capsys.readouterr().err


@pytest.mark.parametrize("rule, message", [
    ("bus:no_parking>=0.3", "unknown class 'bus'"),
    ("car:no-parking>=0.3", "unknown zone 'no-parking' (did you mean 'no_parking'?)"),
    ("car>=0.3", "cannot parse"),
])
def test_bad_rules_are_clear_errors_before_any_output(tmp_path, capsys, rule, message):
    zones = write_zone_drawing(tmp_path / "frame.json", H, W, ZONES)
    rc, out = _run(tmp_path, zones, [block(H, W, 0, 0, 10, 10)], [1], [rule])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert not os.path.exists(os.path.join(out, "violations.csv"))


def test_malformed_rule_is_reported_before_the_zones_file_is_read(tmp_path, capsys):
    rc, _ = _run(tmp_path, str(tmp_path / "missing.json"), [block(H, W, 0, 0, 10, 10)], [1], ["car>=0.3"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot parse" in err and "missing.json" not in err


def test_zone_drawing_errors(tmp_path, capsys):
    lines_only = tmp_path / "lines.json"
    json.dump({"shapes": [{"label": "no_parking", "points": [[0, 0], [5, 5]], "shape_type": "line"}],
               "imageHeight": H, "imageWidth": W, "imagePath": "x.jpg"}, open(lines_only, "w"))
    with pytest.raises(ZoneError, match="no zone polygons found .*has no area"):
        load_drawn_zones(str(lines_only))
    with pytest.raises(ZoneError, match="file not found"):
        load_drawn_zones(str(tmp_path / "missing.json"))


def test_zone_fractions_are_per_mask_pixel():
    zones = {"a": np.zeros((10, 10), bool), "b": np.ones((10, 10), bool)}
    zones["a"][:, :3] = True
    masks = np.zeros((2, 10, 10), np.uint8)
    masks[0, 0:2, 0:5] = 1  # 6 of 10 pixels in a
    np.testing.assert_allclose(zone_fractions(masks, zones), [[0.6, 1.0], [0.0, 0.0]])


def test_an_image_without_detections_gives_no_rows(tmp_path):
    from tfod_seg.inference.detections import Detections
    from tfod_seg.zones.measure import measure_image
    from tfod_seg.zones.rules import parse_rules

    zones = load_drawn_zones(write_zone_drawing(tmp_path / "frame.json", H, W, ZONES)).zones_for(H, W)
    assert measure_image("a.png", Detections.empty(H, W), zones, parse_rules(["car:no_parking>=0.3"]), str) == []
