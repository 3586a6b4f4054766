"""`run_zones`: measure every detection's mask against the zones, judge the rules, write the
tables, overlays and summary (`tfod_seg.zones.report`).

Three steps: `plan_zones` (zones, rules, detection source; every rule checked against the
classes and zone names before any image is read), `execute_zones` (per image: zone pixels at
the image's size, overlap fractions, verdicts, overlay) and `report_zones` (tables and
``summary.json``). Paths may be URLs (`tfod_seg.io`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Dict, List, Optional, Sequence

from tfod_seg import io
from tfod_seg.zones.measure import MeasuredDetection, masks_of, measure_image
from tfod_seg.zones.report import write_overlay, write_tables, zone_stats
from tfod_seg.zones.rules import Rule, check_rules, parse_rules
from tfod_seg.zones.sources import DetectionSource


@dataclasses.dataclass
class ZonesSummary:
    """What `run_zones` did; `to_json()` is ``summary.json``."""

    zones: str
    zone_names: List[str]
    detections_from: str
    rules: List[Dict]
    images: int
    detections: int
    violations: int  # detections violating at least one rule
    violations_per_rule: Dict[str, int]
    per_zone: List[Dict]
    outputs: Dict[str, str]
    notes: List[str]
    skipped_shapes: List[Dict]
    seconds: float

    def to_json(self) -> Dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ZonesPlan:
    zones: object  # DrawnZones or SceneZones: .names, .describe, .zones_for(h, w, image, name)
    source: DetectionSource
    rules: List[Rule]
    out_dir: str
    overlays: Optional[str]  # overlay folder, or None


@dataclasses.dataclass
class _Tally:
    measured: List[MeasuredDetection] = dataclasses.field(default_factory=list)
    image_fractions: Dict[str, List[float]] = dataclasses.field(default_factory=dict)
    images: int = 0
    overlays: int = 0


def plan_zones(zones, source: DetectionSource, rules: Sequence[str], out_dir, *, overlays: bool = True) -> ZonesPlan:
    """Parse and check the rules against ``source``'s classes and ``zones``' names; create ``out_dir``."""
    parsed = parse_rules(rules)
    check_rules(parsed, sorted(source.class_names.values()), zones.names,
                classes_from=f"classes of the {source.describe}", zones_from=zones.describe)
    out_dir = io.makedirs(io.check_path(out_dir, "--out folder"), "--out folder")
    overlay_dir = io.makedirs(io.join(out_dir, "overlays"), "overlay folder") if overlays else None
    return ZonesPlan(zones, source, parsed, out_dir, overlay_dir)


def _stems(name: str, used: Dict[str, int]) -> str:
    stem = os.path.splitext(io.basename(name))[0] or "image"
    used[stem] = used.get(stem, 0) + 1
    return stem if used[stem] == 1 else f"{stem}_{used[stem]}"


def execute_zones(plan: ZonesPlan, progress=None) -> _Tally:
    tally = _Tally()
    used: Dict[str, int] = {}
    for item in plan.source.images:
        zones = plan.zones.zones_for(item.height, item.width, image=item.image, name=item.name)
        for name, zone in zones.items():
            tally.image_fractions.setdefault(name, []).append(float(zone.mean()))
        measured = measure_image(item.name, item.detections, zones, plan.rules, plan.source.name_of)
        tally.measured.extend(measured)
        tally.images += 1
        if plan.overlays and item.image is not None:
            path = io.join(plan.overlays, _stems(item.name, used) + ".png")
            write_overlay(path, item.image, zones, masks_of(item.detections), measured)
            tally.overlays += 1
        if progress is not None:
            progress.update(1)
    return tally


def report_zones(plan: ZonesPlan, tally: _Tally, seconds: float) -> ZonesSummary:
    stats = zone_stats(plan.zones.names, tally.measured, tally.image_fractions)
    outputs = write_tables(plan.out_dir, tally.measured, stats)
    if plan.overlays:
        outputs["overlays"] = plan.overlays
    per_rule = {r.text: sum(1 for m in tally.measured if r.text in m.violated) for r in plan.rules}
    summary = ZonesSummary(
        zones=plan.zones.describe, zone_names=list(plan.zones.names), detections_from=plan.source.describe,
        rules=[r.to_json() for r in plan.rules], images=tally.images, detections=len(tally.measured),
        violations=sum(1 for m in tally.measured if m.violated), violations_per_rule=per_rule,
        per_zone=[s.to_json() for s in stats], outputs=outputs, notes=list(plan.source.notes),
        skipped_shapes=list(getattr(plan.zones, "skipped", [])), seconds=round(seconds, 3))
    outputs["summary"] = io.join(plan.out_dir, "summary.json")
    io.atomic_write_json(outputs["summary"], summary.to_json())
    return summary


def run_zones(zones, source: DetectionSource, rules: Sequence[str], out_dir, *, overlays: bool = True,
              progress=None) -> ZonesSummary:
    """Measure ``source``'s detections (`tfod_seg.zones.sources`) against ``zones``
    (`tfod_seg.zones.maps.load_drawn_zones` or `tfod_seg.zones.scene.SceneZones`) under
    ``rules`` (``"car:no_parking>=0.3"``, see `tfod_seg.zones.rules`) and write the outputs
    under ``out_dir``. Returns the `ZonesSummary` (also ``out_dir/summary.json``)."""
    start = time.monotonic()
    plan = plan_zones(zones, source, rules, out_dir, overlays=overlays)
    with io.output_lock(plan.out_dir):
        tally = execute_zones(plan, progress)
        return report_zones(plan, tally, time.monotonic() - start)


__all__ = ["ZonesPlan", "ZonesSummary", "plan_zones", "execute_zones", "report_zones", "run_zones"]
