"""`SceneZones`: zones predicted per image by a scene (semantic-segmentation) export, for
cameras that move (`tfod-seg zones --scene-model EXPORT`). Each class of the scene model
except the background is a zone; its pixels are those the model assigns to that class
(argmax), at the image's own size."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from tfod_seg.inference.semantic import SemanticPredictor
from tfod_seg.zones.maps import ZoneError


class SceneZones:
    """Zones from a scene export; the same protocol as `tfod_seg.zones.maps.DrawnZones`."""

    def __init__(self, export_dir):
        self.predictor = export_dir if isinstance(export_dir, SemanticPredictor) else SemanticPredictor(export_dir)
        self.classes = {i: n for i, n in self.predictor.classes.items() if i != 0}
        self.skipped: List[Dict] = []

    @property
    def names(self) -> List[str]:
        return list(self.classes.values())

    @property
    def describe(self) -> str:
        return f"zones predicted by the scene model {self.predictor.export_dir}"

    def zones_for(self, height: int, width: int, image=None, name: str = "image") -> Dict[str, np.ndarray]:
        if image is None:
            raise ZoneError(f"{name}: the scene model needs the image's pixels (with --predictions, pass --images DIR)")
        class_map = self.predictor.predict(image)
        if class_map.shape != (height, width):
            raise ZoneError(f"{name}: scene map is {class_map.shape[1]}x{class_map.shape[0]}, detections are "
                            f"{width}x{height}")
        return {zone: class_map == i for i, zone in self.classes.items()}


__all__ = ["SceneZones"]
