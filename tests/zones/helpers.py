"""Synthetic zone drawings and COCO predictions with known overlaps, for the zones tests."""

from __future__ import annotations

import json
import os
from typing import Dict, List, Sequence

import numpy as np


def write_zone_drawing(path, height: int, width: int, zones: Dict[str, Sequence]) -> str:
    """A LabelMe file (no image beside it) with one rectangle per zone: ``{name: (x0, y0, x1, y1)}``
    (pixel edges), or a list of polygons ``[[x, y], ...]``."""
    shapes = []
    for name, geom in zones.items():
        if len(geom) == 4 and not isinstance(geom[0], (list, tuple)):
            x0, y0, x1, y1 = geom
            shapes.append({"label": name, "points": [[x0, y0], [x1, y1]], "shape_type": "rectangle",
                           "group_id": None, "flags": {}})
        else:
            shapes.append({"label": name, "points": [list(p) for p in geom], "shape_type": "polygon",
                           "group_id": None, "flags": {}})
    doc = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": "frame.jpg", "imageData": None,
           "imageHeight": height, "imageWidth": width}
    with open(path, "w") as f:
        json.dump(doc, f)
    return os.fspath(path)


def rle(mask: np.ndarray) -> Dict:
    from pycocotools import mask as mask_utils

    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")}


def write_predictions(folder, height: int, width: int, masks: List[np.ndarray], classes: List[int],
                      scores: List[float], names=("car", "person")) -> tuple:
    """``(results.json, images.json)`` for one image ``street.png`` holding ``masks``."""
    results = []
    for m, c, s in zip(masks, classes, scores):
        ys, xs = np.nonzero(m)
        box = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
        results.append({"image_id": 1, "category_id": c, "score": s, "bbox": box, "segmentation": rle(m)})
    gt = {"images": [{"id": 1, "file_name": "street.png", "height": height, "width": width}], "annotations": [],
          "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)]}
    res_path, gt_path = os.path.join(folder, "results.json"), os.path.join(folder, "images.json")
    with open(res_path, "w") as f:
        json.dump(results, f)
    with open(gt_path, "w") as f:
        json.dump(gt, f)
    return res_path, gt_path


def l_shaped_car(height: int, width: int) -> np.ndarray:
    """An L-shaped mask: a vertical bar x 10..19, y 10..59 and a foot x 10..59, y 50..59.
    Its box is x 10..59, y 10..59; the top-right corner of the box (x 40..59, y 10..39) is
    empty."""
    m = np.zeros((height, width), np.uint8)
    m[10:60, 10:20] = 1
    m[50:60, 10:60] = 1
    return m


def block(height: int, width: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((height, width), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m
