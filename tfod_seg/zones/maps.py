"""Zone maps: which pixels of an image belong to each named zone.

Two sources implement one small protocol, ``zones_for(height, width, image=None) ->
Dict[name, bool (height, width) array]``:

* `DrawnZones`: polygons drawn once in LabelMe on a frame of a fixed camera (labels such as
  ``no_parking``, ``sidewalk``, ``parking``; several shapes with one label are one zone, their
  union). Images of another size are served by scaling the polygons (``x * W / W0``,
  ``y * H / H0``), which is only correct when the aspect ratio is the same: a different
  aspect (another camera, a crop) is refused with `ZoneError`.
* `SceneZones` (`tfod_seg.zones.scene`): a semantic-segmentation model predicts the zone
  pixels of every image (moving cameras).

Coordinates: LabelMe points are ``(x, y)`` absolute pixels of the frame they were drawn on.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np

from tfod_seg import io
from tfod_seg.annotations.labelme import read_labelme_shapes
from tfod_seg.data.masks import MaskError, rasterize
from tfod_seg.data.types import Bitmap, Instance, Polygons
from tfod_seg.errors import UserError

#: Relative difference of width/height ratios still treated as the same aspect (rounding of
#: downscaled frames: 1920x1080 -> 853x480 differs by 0.05 %).
ASPECT_TOLERANCE = 0.01


class ZoneError(UserError):
    """The zone drawing cannot be used (unreadable, no zones, or a frame of another aspect)."""


@dataclasses.dataclass
class DrawnZones:
    """Zones drawn on a ``width`` x ``height`` frame; `zones_for` rasterises them (cached per size)."""

    source: str
    height: int
    width: int
    shapes: Dict[str, List[Instance]]  # zone name -> its shapes (union)
    skipped: List[Dict] = dataclasses.field(default_factory=list)
    _cache: Dict[Tuple[int, int], Dict[str, np.ndarray]] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def names(self) -> List[str]:
        return list(self.shapes)

    @property
    def describe(self) -> str:
        return f"zones drawn in {self.source}"

    def check_size(self, height: int, width: int, image: str = "image") -> None:
        """`ZoneError` when a ``width`` x ``height`` image has another aspect than the frame."""
        frame, got = self.width / self.height, width / height
        if abs(got - frame) > ASPECT_TOLERANCE * frame:
            raise ZoneError(
                f"{self.source}: zones were drawn on a {self.width}x{self.height} frame (aspect {frame:.3f}) but "
                f"{image} is {width}x{height} (aspect {got:.3f}); zones scale only to frames of the same aspect: "
                "draw the zones on a frame of this camera")

    def zones_for(self, height: int, width: int, image=None, name: str = "image") -> Dict[str, np.ndarray]:
        """``{zone: bool (height, width)}`` for an image of that size (scaled from the frame)."""
        key = (int(height), int(width))
        if key not in self._cache:
            self.check_size(height, width, name)
            self._cache[key] = {zone: self._rasterize(insts, *key) for zone, insts in self.shapes.items()}
        return self._cache[key]

    def _rasterize(self, instances: List[Instance], height: int, width: int) -> np.ndarray:
        sy, sx = height / self.height, width / self.width
        out = np.zeros((height, width), bool)
        for inst in instances:
            try:
                out |= _scaled_mask(inst.mask, self.height, self.width, height, width, sx, sy).astype(bool)
            except MaskError as e:
                raise ZoneError(f"{self.source}: zone '{inst.label}': {e}") from None
        return out


def _scaled_mask(mask, frame_h: int, frame_w: int, height: int, width: int, sx: float, sy: float) -> np.ndarray:
    if isinstance(mask, Polygons):
        parts = tuple(tuple(v * (sx if i % 2 == 0 else sy) for i, v in enumerate(part)) for part in mask.parts)
        return rasterize(Polygons(parts), height, width)
    full = rasterize(mask, frame_h, frame_w)  # a bitmap: rasterise on the frame, resample
    if (height, width) == (frame_h, frame_w):
        return full
    import cv2

    return cv2.resize(full, (width, height), interpolation=cv2.INTER_NEAREST)


def load_drawn_zones(path, only: Optional[List[str]] = None) -> DrawnZones:
    """`DrawnZones` from one LabelMe JSON file (local path or URL). Shapes that make no area
    (lines, points) are skipped and reported; a file with no zone at all is a `ZoneError`."""
    path = io.check_path(path, "--zones file")
    if not io.isfile(path):
        raise ZoneError(f"--zones {path}: file not found (expected a LabelMe JSON with zone polygons)")
    height, width, instances, skipped = read_labelme_shapes(path)
    shapes: Dict[str, List[Instance]] = {}
    for inst in instances:
        if isinstance(inst.mask, (Polygons, Bitmap)):
            shapes.setdefault(inst.label, []).append(inst)
    if not shapes:
        reasons = "; ".join(s["reason"] for s in skipped[:3])
        raise ZoneError(f"--zones {path}: no zone polygons found (expected LabelMe polygons, rectangles or masks "
                        f"labelled e.g. no_parking, sidewalk, parking){': ' + reasons if reasons else ''}")
    return DrawnZones(source=path, height=height, width=width, shapes=shapes, skipped=skipped)


__all__ = ["ASPECT_TOLERANCE", "DrawnZones", "ZoneError", "load_drawn_zones"]
