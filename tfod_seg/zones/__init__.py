"""Parking-style zone rules on instance masks: which detections lie (by MASK pixels, not
boxes) in which zone, and which break a rule such as ``car:no_parking>=0.3``.

Notebook API::

    from tfod_seg.zones import load_drawn_zones, model_source, run_zones
    zones = load_drawn_zones("camera7/frame.json")          # LabelMe polygons: no_parking, ...
    source = model_source("exported/", "camera7/frames/")   # or predictions_source(results, coco)
    summary = run_zones(zones, source, ["car:no_parking>=0.3"], "out/")

Zones come from a drawing (`tfod_seg.zones.maps`) or from a semantic scene model
(`tfod_seg.zones.scene`); detections from a model or from COCO results
(`tfod_seg.zones.sources`). TensorFlow loads only when a model is loaded.
"""

from __future__ import annotations

from tfod_seg.zones.maps import DrawnZones, ZoneError, load_drawn_zones
from tfod_seg.zones.measure import zone_fractions
from tfod_seg.zones.rules import Rule, RuleError, parse_rule
from tfod_seg.zones.run import ZonesSummary, run_zones
from tfod_seg.zones.sources import model_source, predictions_source

__all__ = ["DrawnZones", "Rule", "RuleError", "ZoneError", "ZonesSummary", "load_drawn_zones", "model_source",
           "parse_rule", "predictions_source", "run_zones", "zone_fractions"]
