"""`tfod-seg zones --model EXPORT --images DIR` on the fake export of tests/inference (class 1 =
red pixels, exact masks): the mask, not the box, decides; overlays are written."""

import csv
import json
import os

import numpy as np
from PIL import Image

from tests.inference.fake_export import fake_export
from tests.zones.helpers import l_shaped_car, write_zone_drawing
from tfod_seg.cli import main

H, W = 80, 120


def test_model_path_measures_masks_and_draws_overlays(tmp_path_factory, tmp_path):
    model = fake_export(tmp_path_factory, "reframed")
    images = tmp_path / "frames"
    images.mkdir()
    inside = np.zeros((H, W, 3), np.uint8)
    inside[30:55, 60:110] = (255, 0, 0)  # red: 40 % of it in no_parking (y < 40)
    outside = np.zeros((H, W, 3), np.uint8)
    outside[l_shaped_car(H, W) > 0] = (255, 0, 0)  # box crosses no_parking, mask does not
    Image.fromarray(inside).save(images / "a.png")
    Image.fromarray(outside).save(images / "b.png")
    zones = write_zone_drawing(tmp_path / "frame.json", 2 * H, 2 * W, {"no_parking": (80, 0, 240, 80)})
    out = tmp_path / "out"
    rc = main(["zones", "--zones", zones, "--model", model, "--images", str(images), "--rule", "red:no_parking>=0.3",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    rows = {os.path.basename(r["image"]): r for r in csv.DictReader(open(out / "violations.csv"))}
    assert rows["a.png"]["verdict"] == "violation" and abs(float(rows["a.png"]["overlap"]) - 0.4) < 0.01
    assert rows["b.png"]["verdict"] == "ok" and float(rows["b.png"]["overlap"]) == 0.0
    assert sorted(os.listdir(out / "overlays")) == ["a.png", "b.png"]
    overlay = np.asarray(Image.open(out / "overlays" / "a.png"))
    assert overlay.shape[1:] == (W, 3) and overlay.shape[0] > H  # the image, then the legend strip
    assert (overlay[:H] == (255, 32, 32)).all(axis=2).any()  # violator outlined red
    assert json.load(open(out / "summary.json"))["violations"] == 1


def test_model_without_label_map_names_the_fix(tmp_path_factory, tmp_path, capsys):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(fake_export(tmp_path_factory, "reframed"), model)
    os.remove(model / "label_map.pbtxt")
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "a.png")
    zones = write_zone_drawing(tmp_path / "frame.json", H, W, {"no_parking": (0, 0, 10, 10)})
    rc = main(["zones", "--zones", zones, "--model", str(model), "--images", str(tmp_path / "a.png"),
               "--rule", "red:no_parking>=0.3", "--out", str(tmp_path / "out"), "--no-progress"])
    assert rc == 2 and "pass --label-map" in capsys.readouterr().err
