"""Generated street scenes for the parking use case, in LabelMe format, with the truth.

Each image (``size`` x ``size``, a camera looking down on a street; band positions vary per
image, as for a moving camera) has, top to bottom: a ``sidewalk`` band, a parking lane cut
into ``parking`` bays (white lines) and ``no_parking`` stretches (red hatching), the ``road``
and a second ``sidewalk``. Car-like shapes (rounded bodies of random colours with a dark
windscreen) are placed as

* ``bay``: inside a parking bay; ``two_bays``: across the line between two bays; ``road``:
  driving on the road (all legal);
* ``no_parking_edge``: across a bay's edge into a no-parking stretch (40-70 % of the car in
  it); ``no_parking``: inside one; ``sidewalk``: half up on the sidewalk (35-70 %).

Files under ``out_dir``: ``images/street_NNNNN.png``; ``scene/street_NNNNN.json`` (a polygon
per zone: the scene model's data); ``cars/street_NNNNN.json`` (a polygon per car: the Mask
R-CNN's data); ``truth.json`` (per car: its placement, the exact fraction of its mask in each
zone and its verdict under `RULES`). Coordinates are LabelMe's ``[x, y]`` absolute pixels.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Dict, List, Tuple

import numpy as np

from tfod_seg import io
from tfod_seg.annotations.labelme import write_labelme
from tfod_seg.labelmap import LabelMap

log = logging.getLogger(__name__)

ZONE_CLASSES = ("road", "sidewalk", "parking", "no_parking")
CAR = "car"
RULES = ("car:no_parking>=0.3", "car:sidewalk>=0.2")
PLACEMENTS = ("bay", "two_bays", "road", "no_parking_edge", "no_parking", "sidewalk")
_COLOURS = {"road": (70, 72, 76), "sidewalk": (178, 174, 166), "parking": (96, 104, 118), "no_parking": (150, 60, 55)}


@dataclasses.dataclass
class _Layout:
    size: int
    top: int  # sidewalk 0..top
    lane: Tuple[int, int]  # parking lane rows
    road: Tuple[int, int]
    segments: List[Tuple[int, int, str]]  # (x0, x1, "parking"|"no_parking") along the lane, x1 exclusive


def _layout(rng, size: int) -> _Layout:
    top = int(rng.integers(size * 12 // 100, size * 20 // 100))
    lane_h = int(rng.integers(size * 26 // 100, size * 32 // 100))
    bottom = int(rng.integers(size * 10 // 100, size * 16 // 100))
    segments, x = [], -int(rng.integers(0, size // 8))
    kinds = ["parking", "parking", "no_parking", "parking", "parking", "no_parking", "parking"]
    start = int(rng.integers(0, len(kinds)))
    k = start
    while x < size:
        kind = kinds[k % len(kinds)]
        width = int(rng.integers(size * 26 // 100, size * 34 // 100))
        segments.append((max(x, 0), min(x + width, size), kind))
        x += width
        k += 1
    return _Layout(size, top, (top, top + lane_h), (top + lane_h, size - bottom), segments)


def zone_map(layout: _Layout) -> Dict[str, np.ndarray]:
    """The truth: a bool ``(size, size)`` map per zone class."""
    s = layout.size
    zones = {name: np.zeros((s, s), bool) for name in ZONE_CLASSES}
    zones["sidewalk"][:layout.top] = True
    zones["sidewalk"][layout.road[1]:] = True
    zones["road"][layout.road[0]:layout.road[1]] = True
    for x0, x1, kind in layout.segments:
        zones[kind][layout.lane[0]:layout.lane[1], x0:x1] = True
    return zones


def _zone_shapes(layout: _Layout) -> List[dict]:
    s = layout.size

    def rect(label, x0, y0, x1, y1):
        return {"label": label, "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "shape_type": "polygon",
                "group_id": None, "flags": {}}

    shapes = [rect("sidewalk", 0, 0, s, layout.top), rect("road", 0, layout.road[0], s, layout.road[1]),
              rect("sidewalk", 0, layout.road[1], s, s)]
    shapes += [rect(kind, x0, layout.lane[0], x1, layout.lane[1]) for x0, x1, kind in layout.segments]
    return shapes


def _paint_scene(rng, layout: _Layout, zones) -> np.ndarray:
    import cv2

    s = layout.size
    img = np.zeros((s, s, 3), np.float32)
    for name, colour in _COLOURS.items():
        img[zones[name]] = np.asarray(colour, np.float32) * rng.uniform(0.85, 1.15)
    hatch = (np.add.outer(np.arange(s), np.arange(s)) // 4) % 2 == 0
    img[zones["no_parking"] & hatch] = (215, 190, 60)  # yellow hatching on red
    for x0, x1, kind in layout.segments:  # white bay lines and the lane's edge lines
        for x in (x0, x1 - 1):
            if 0 < x < s - 1:
                img[layout.lane[0]:layout.lane[1], x] = (235, 235, 235)
    img[layout.lane[1] - 1, :] = (235, 235, 235)
    img += rng.normal(0, 7, img.shape)
    img = cv2.GaussianBlur(np.clip(img, 0, 255), (3, 3), 0)
    return img


def _car_polygon(cx: float, cy: float, length: float, width: float) -> np.ndarray:
    """A rounded rectangle (cut corners), horizontal, as ``(K, 2)`` points."""
    c = min(length, width) * 0.25
    x0, x1, y0, y1 = cx - length / 2, cx + length / 2, cy - width / 2, cy + width / 2
    return np.asarray([[x0 + c, y0], [x1 - c, y0], [x1, y0 + c], [x1, y1 - c], [x1 - c, y1], [x0 + c, y1],
                       [x0, y1 - c], [x0, y0 + c]], np.float64)


def _placement(rng, layout: _Layout, kind: str, length: float, width: float):
    """Car centre for a placement kind, or None when this layout has no place for it."""
    lane_mid = (layout.lane[0] + layout.lane[1]) / 2 + rng.uniform(-2, 2)
    bays = [(x0, x1) for x0, x1, k in layout.segments if k == "parking" and x1 - x0 > length + 4]
    edges = [(x1 if a[2] == "parking" else a[1], a[2]) for a, b in zip(layout.segments, layout.segments[1:])
             for x1 in [a[1]] if {a[2], b[2]} == {"parking", "no_parking"}]
    if kind == "bay" and bays:
        x0, x1 = bays[rng.integers(len(bays))]
        return rng.uniform(x0 + length / 2 + 2, x1 - length / 2 - 2), lane_mid
    if kind == "two_bays":
        lines = [a[1] for a, b in zip(layout.segments, layout.segments[1:]) if a[2] == b[2] == "parking"]
        if lines:
            return lines[rng.integers(len(lines))] + rng.uniform(-0.2, 0.2) * length, lane_mid
    if kind == "no_parking_edge" and edges:
        x, left_kind = edges[rng.integers(len(edges))]
        inside = rng.uniform(0.45, 0.7) * length  # part of the car in the no-parking stretch
        return (x + inside - length / 2 if left_kind == "parking" else x - inside + length / 2), lane_mid
    if kind == "no_parking":
        spots = [(x0, x1) for x0, x1, k in layout.segments if k == "no_parking" and x1 - x0 > length + 4]
        if spots:
            x0, x1 = spots[rng.integers(len(spots))]
            return rng.uniform(x0 + length / 2 + 2, x1 - length / 2 - 2), lane_mid
    if kind == "road":
        return rng.uniform(length / 2, layout.size - length / 2), rng.uniform(layout.road[0] + width / 2 + 1,
                                                                             layout.road[1] - width / 2 - 1)
    if kind == "sidewalk":
        up = rng.uniform(0.4, 0.7) * width  # part of the car above the lane, on the sidewalk
        return rng.uniform(length / 2, layout.size - length / 2), layout.top - up + width / 2
    return None


def _draw_car(rng, img: np.ndarray, poly: np.ndarray) -> np.ndarray:
    import cv2

    s = img.shape[0]
    mask = np.zeros((s, s), np.uint8)
    cv2.fillPoly(mask, [np.round(poly * 8).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=3)
    colour = rng.uniform(20, 235, 3)
    colour[rng.integers(3)] = rng.choice([15.0, 245.0])  # saturated: apart from the greys
    img[mask > 0] = colour
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0)
    wx = x0 + (x1 - x0) * (0.55 if rng.random() < 0.5 else 0.2)
    glass = np.zeros_like(mask)
    cv2.rectangle(glass, (int(wx), int(y0 + 3)), (int(wx + (x1 - x0) * 0.22), int(y1 - 3)), 1, -1)
    img[(glass > 0) & (mask > 0)] = (30, 34, 40)
    return mask


def _cars(rng, img, layout: _Layout, zones, max_cars: int) -> List[dict]:
    cars, taken = [], np.zeros(img.shape[:2], bool)
    for _ in range(int(rng.integers(2, max_cars + 1))):
        for _attempt in range(12):
            kind = PLACEMENTS[rng.integers(len(PLACEMENTS))]
            length, width = rng.uniform(0.2, 0.26) * layout.size, rng.uniform(0.11, 0.14) * layout.size
            centre = _placement(rng, layout, kind, length, width)
            if centre is None:
                continue
            poly = _car_polygon(centre[0], centre[1], length, width)
            poly = np.clip(poly, 0, layout.size)
            x0, y0 = poly.min(axis=0).astype(int)
            x1, y1 = np.ceil(poly.max(axis=0)).astype(int)
            if x1 - x0 < length * 0.9 or taken[max(y0 - 2, 0):y1 + 2, max(x0 - 2, 0):x1 + 2].any():
                continue
            mask = _draw_car(rng, img, poly)
            taken |= mask > 0
            cars.append({"placement": kind, "polygon": poly, "mask": mask})
            break
    return cars


def truth_of(mask: np.ndarray, zones: Dict[str, np.ndarray]) -> Dict:
    """The fraction of ``mask`` in each zone and the verdict under `RULES`."""
    area = max(int(mask.sum()), 1)
    fractions = {z: round(float((zones[z] & (mask > 0)).sum()) / area, 4) for z in ZONE_CLASSES}
    violation = fractions["no_parking"] >= 0.3 or fractions["sidewalk"] >= 0.2
    return {"overlaps": fractions, "verdict": "violation" if violation else "ok"}


def generate_streets(out_dir, num_images: int, size: int = 128, seed: int = 0, max_cars: int = 4) -> Dict:
    """Write ``num_images`` street scenes under ``out_dir`` (see the module docstring); the
    same ``seed`` gives the same files. Returns a summary (paths, counts per placement)."""
    import cv2

    if num_images < 1 or size < 64:
        raise ValueError(f"need num_images >= 1 and size >= 64, got {num_images}, {size}")
    out_dir = io.makedirs(io.check_path(out_dir, "streets folder"))
    for sub in ("images", "scene", "cars"):
        io.makedirs(io.join(out_dir, sub))
    truth, per_kind = {}, {k: 0 for k in PLACEMENTS}
    for i in range(num_images):
        rng = np.random.default_rng([seed, 16, i])
        layout = _layout(rng, size)
        zones = zone_map(layout)
        img = _paint_scene(rng, layout, zones)
        cars = _cars(rng, img, layout, zones, max_cars)
        stem = f"street_{i:05d}"
        ok, buf = cv2.imencode(".png", cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        io.atomic_write_bytes(io.join(out_dir, "images", stem + ".png"), buf.tobytes())
        image_ref = f"../images/{stem}.png"
        write_labelme(io.join(out_dir, "scene", stem + ".json"), image_path=image_ref, height=size, width=size,
                      shapes=_zone_shapes(layout))
        write_labelme(io.join(out_dir, "cars", stem + ".json"), image_path=image_ref, height=size, width=size,
                      shapes=[{"label": CAR, "points": c["polygon"].round(2).tolist(), "shape_type": "polygon"}
                              for c in cars])
        truth[f"{stem}.png"] = [dict(truth_of(c["mask"], zones), placement=c["placement"],
                                     box=[float(v) for v in (*c["polygon"].min(axis=0), *c["polygon"].max(axis=0))])
                                for c in cars]
        for c in cars:
            per_kind[c["placement"]] += 1
    io.atomic_write_json(io.join(out_dir, "truth.json"), {"rules": list(RULES), "images": truth})
    LabelMap.from_names(list(ZONE_CLASSES)).write(io.join(out_dir, "scene_label_map.pbtxt"))
    LabelMap.from_names([CAR]).write(io.join(out_dir, "cars_label_map.pbtxt"))
    cars_total = sum(per_kind.values())
    violations = sum(1 for cs in truth.values() for c in cs if c["verdict"] == "violation")
    log.info("wrote %d street scenes, %d cars (%d violations) to %s", num_images, cars_total, violations, out_dir)
    return {"out_dir": out_dir, "num_images": num_images, "size": size, "cars": cars_total,
            "violations": violations, "placements": per_kind, "truth": io.join(out_dir, "truth.json")}


__all__ = ["CAR", "PLACEMENTS", "RULES", "ZONE_CLASSES", "generate_streets", "truth_of", "zone_map"]
