"""Measure detections against zones: the fraction of each detection's MASK pixels inside each
zone (pixels, not boxes: a car whose box crosses a no-parking zone while its body stays out is
not in it), and the verdicts of the rules.

``fraction = |mask ∩ zone| / |mask|`` (0 for an empty mask). Each zone is measured on its own;
zones drawn overlapping each other both count the shared pixels.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np

from tfod_seg.inference.formats import mask_bounds
from tfod_seg.zones.rules import Rule

VIOLATION, OK = "violation", "ok"


@dataclasses.dataclass
class Check:
    """One row of ``violations.csv``: a detection, a zone, and the rule on that pair (if any)."""

    image: str
    detection: int  # 1-based index in the image's detections (highest score first)
    cls: str
    score: float
    zone: str
    overlap: float  # fraction of the detection's mask inside the zone
    rule: str  # the rule's text, "" when no rule names this class and zone
    verdict: str  # "violation" or "ok"

    def to_json(self) -> Dict:
        return {"image": self.image, "detection": self.detection, "class": self.cls, "score": round(self.score, 4),
                "zone": self.zone, "overlap": round(self.overlap, 4), "rule": self.rule, "verdict": self.verdict}


@dataclasses.dataclass
class MeasuredDetection:
    """A detection with its mask area, box and overlap with every zone."""

    image: str
    detection: int
    cls: str
    class_id: int
    score: float
    box: List[float]  # COCO [x, y, w, h] absolute pixels
    area: int  # mask pixels
    overlaps: Dict[str, float]
    violated: List[str]  # texts of the rules that hold
    checks: List[Check]

    @property
    def verdict(self) -> str:
        return VIOLATION if self.violated else OK


def zone_fractions(masks: np.ndarray, zones: Dict[str, np.ndarray]) -> np.ndarray:
    """``(N, Z)`` float: fraction of each of the ``N`` full-image 0/1 masks inside each zone
    (``zones`` in order). Only each mask's bounding box is read."""
    names = list(zones)
    out = np.zeros((len(masks), len(names)), np.float64)
    for k, mask in enumerate(masks):
        bounds = mask_bounds(mask)
        if bounds is None:
            continue
        y0, y1, x0, x1 = bounds
        crop = mask[y0:y1, x0:x1].astype(bool)
        area = int(crop.sum())
        for z, name in enumerate(names):
            out[k, z] = np.count_nonzero(zones[name][y0:y1, x0:x1] & crop) / area
    return out


def judge(overlaps: Dict[str, float], cls: str, rules: Sequence[Rule]) -> Dict[str, List[Rule]]:
    """For each zone, the rules on (``cls``, zone) that hold."""
    out: Dict[str, List[Rule]] = {}
    for rule in rules:
        if rule.applies_to(cls) and rule.zone in overlaps and rule.holds(overlaps[rule.zone]):
            out.setdefault(rule.zone, []).append(rule)
    return out


def _checks(image: str, index: int, cls: str, score: float, overlaps: Dict[str, float],
            rules: Sequence[Rule]) -> List[Check]:
    rows = []
    for zone, fraction in overlaps.items():
        applying = [r for r in rules if r.zone == zone and r.applies_to(cls)]
        for rule in applying or [None]:
            verdict = VIOLATION if rule is not None and rule.holds(fraction) else OK
            rows.append(Check(image, index, cls, score, zone, fraction, rule.text if rule else "", verdict))
    return rows


def measure_image(image: str, detections, zones: Dict[str, np.ndarray], rules: Sequence[Rule],
                  class_name, min_area: int = 1) -> List[MeasuredDetection]:
    """`MeasuredDetection` for each detection of one image (`Detections` with masks), highest
    score first. ``class_name``: id -> name. Masks smaller than ``min_area`` pixels are
    measured as 0 everywhere (a detection whose mask vanished cannot be in a zone)."""
    det = detections.sorted()
    if det.masks is None:
        raise ValueError("zones need instance masks")
    fractions = zone_fractions(det.masks, zones)
    areas = det.masks.sum(axis=(1, 2), dtype=np.int64)  # (0,) for an image without detections
    boxes = det.coco_boxes()
    out = []
    for k in range(len(det)):
        cls = class_name(int(det.classes[k]))
        overlaps = {z: (float(fractions[k, i]) if areas[k] >= min_area else 0.0) for i, z in enumerate(zones)}
        held = judge(overlaps, cls, rules)
        score = float(det.scores[k])
        out.append(MeasuredDetection(
            image=image, detection=k + 1, cls=cls, class_id=int(det.classes[k]), score=score,
            box=[round(float(v), 2) for v in boxes[k]], area=int(areas[k]), overlaps=overlaps,
            violated=[r.text for rs in held.values() for r in rs],
            checks=_checks(image, k + 1, cls, score, overlaps, rules)))
    return out


def masks_of(detections) -> Optional[np.ndarray]:
    """The masks of ``detections`` in `measure_image`'s order (highest score first)."""
    return detections.sorted().masks


__all__ = ["Check", "MeasuredDetection", "OK", "VIOLATION", "judge", "masks_of", "measure_image", "zone_fractions"]
