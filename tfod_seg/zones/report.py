"""Outputs of `tfod-seg zones`: ``violations.csv`` / ``violations.json`` (one row per
detection and zone, with the rule on that pair and its verdict), ``detections.json`` (each
detection with its overlap with every zone), ``zones_summary.csv`` (per zone), overlays (zones
tinted, violators outlined in red, other detections in green) and ``summary.json``.
"""

from __future__ import annotations

import csv
import dataclasses
import io as _text_io
from typing import Dict, List, Sequence

import numpy as np

from tfod_seg import io
from tfod_seg.inference.draw import instance_colors
from tfod_seg.inference.formats import write_png
from tfod_seg.zones.measure import VIOLATION, MeasuredDetection

CSV_COLUMNS = ("image", "detection", "class", "score", "zone", "overlap", "rule", "verdict")
VIOLATOR_RGB = (255, 32, 32)
OK_RGB = (40, 220, 60)


@dataclasses.dataclass
class ZoneStats:
    """Per zone: its mean share of the image, detections touching it, violations in it."""

    zone: str
    mean_image_fraction: float  # mean over images of (zone pixels / image pixels)
    detections_touching: int  # detections with any mask pixel in the zone
    detections_mostly_inside: int  # detections with >= half their mask in the zone
    violations: int  # detections violating a rule on this zone
    violations_by_class: Dict[str, int]

    def to_json(self) -> Dict:
        return dataclasses.asdict(self)


def zone_stats(zone_names: Sequence[str], measured: Sequence[MeasuredDetection],
               image_fractions: Dict[str, List[float]]) -> List[ZoneStats]:
    out = []
    for zone in zone_names:
        by_class: Dict[str, int] = {}
        violations = 0
        for m in measured:
            if any(c.zone == zone and c.verdict == VIOLATION for c in m.checks):
                violations += 1
                by_class[m.cls] = by_class.get(m.cls, 0) + 1
        fractions = image_fractions.get(zone) or [0.0]
        out.append(ZoneStats(
            zone=zone, mean_image_fraction=round(float(np.mean(fractions)), 4),
            detections_touching=sum(1 for m in measured if m.overlaps.get(zone, 0.0) > 0),
            detections_mostly_inside=sum(1 for m in measured if m.overlaps.get(zone, 0.0) >= 0.5),
            violations=violations, violations_by_class=dict(sorted(by_class.items()))))
    return out


def csv_text(columns: Sequence[str], rows: Sequence[Dict]) -> str:
    buf = _text_io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row[k] for k in columns})
    return buf.getvalue()


def write_tables(out_dir: str, measured: Sequence[MeasuredDetection], stats: Sequence[ZoneStats]) -> Dict[str, str]:
    """``violations.csv``, ``violations.json``, ``detections.json``, ``zones_summary.csv``."""
    rows = [c.to_json() for m in measured for c in m.checks]
    paths = {name: io.join(out_dir, name) for name in
             ("violations.csv", "violations.json", "detections.json", "zones_summary.csv")}
    io.atomic_write_text(paths["violations.csv"], csv_text(CSV_COLUMNS, rows))
    io.atomic_write_json(paths["violations.json"], rows)
    detections = [{"image": m.image, "detection": m.detection, "class": m.cls, "class_id": m.class_id,
                   "score": round(m.score, 4), "box": m.box, "mask_area": m.area,
                   "overlaps": {z: round(f, 4) for z, f in m.overlaps.items()}, "verdict": m.verdict,
                   "violated_rules": m.violated} for m in measured]
    io.atomic_write_json(paths["detections.json"], detections)
    stat_rows = [dict(s.to_json(), violations_by_class=";".join(f"{k}={v}" for k, v in s.violations_by_class.items()))
                 for s in stats]
    io.atomic_write_text(paths["zones_summary.csv"], csv_text(
        ("zone", "mean_image_fraction", "detections_touching", "detections_mostly_inside", "violations",
         "violations_by_class"), stat_rows))
    return paths


def zone_colors(names: Sequence[str]) -> Dict[str, tuple]:
    """A fixed colour per zone (by position), distinct from the outline colours."""
    return {name: tuple(int(v) for v in c) for name, c in zip(names, instance_colors(len(names), offset=3))}


def draw_overlay(image: np.ndarray, zones: Dict[str, np.ndarray], masks: np.ndarray,
                 measured: Sequence[MeasuredDetection], alpha: float = 0.35) -> np.ndarray:
    """``image`` with each zone tinted in its colour, violators' masks outlined thick red with
    their rule, other detections outlined thin green; a legend strip of the zones below it."""
    import cv2

    img = np.ascontiguousarray(image, np.uint8).copy()
    colors = zone_colors(list(zones))
    for name, zone in zones.items():
        tint = np.empty_like(img)
        tint[:] = colors[name]
        blended = cv2.addWeighted(img, 1.0 - alpha, tint, alpha, 0.0)
        img[zone] = blended[zone]
    scale = max(0.3, min(img.shape[:2]) / 900)
    thick = max(1, round(min(img.shape[:2]) / 250))
    for m, mask in zip(measured, masks):
        contours, _ = cv2.findContours(np.ascontiguousarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        bad = bool(m.violated)
        cv2.drawContours(img, contours, -1, VIOLATOR_RGB if bad else OK_RGB, thick * 2 if bad else thick)
        if bad and contours:
            _text(img, f"{m.cls} {m.score:.2f}: {', '.join(m.violated)}", int(m.box[0]), max(int(m.box[1]) - 3, 8),
                  VIOLATOR_RGB, scale)
    return np.concatenate([img, _legend(colors, img.shape[1], scale)], axis=0)


def _legend(colors: Dict[str, tuple], width: int, scale: float) -> np.ndarray:
    """A white strip with a colour swatch and the name of each zone, wrapped to ``width``."""
    import cv2

    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    row_h = th + base + 6
    items, rows, x = [], 0, 4
    for name, color in colors.items():
        (tw, _), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        if x + th + tw + 8 > width and x > 4:
            rows, x = rows + 1, 4
        items.append((name, color, x, rows))
        x += th + tw + 12
    strip = np.full(((rows + 1) * row_h + 2, width, 3), 255, np.uint8)
    for name, color, x0, row in items:
        y = row * row_h + 3
        cv2.rectangle(strip, (x0, y), (x0 + th, y + th), tuple(int(c) for c in color), -1)
        cv2.putText(strip, name, (x0 + th + 3, y + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def _text(img, text: str, x: int, y: int, color, scale: float) -> None:
    import cv2

    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x = min(max(x, 0), max(img.shape[1] - tw - 2, 0))
    y = max(y, th + 1)
    cv2.rectangle(img, (x, y - th - 1), (x + tw + 2, y + base), (0, 0, 0), -1)
    cv2.putText(img, text, (x + 1, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def write_overlay(path: str, image: np.ndarray, zones, masks, measured) -> None:
    write_png(path, draw_overlay(image, zones, masks, measured), rgb=True)


__all__ = ["CSV_COLUMNS", "ZoneStats", "csv_text", "draw_overlay", "write_overlay", "write_tables", "zone_stats",
           "zone_colors"]
