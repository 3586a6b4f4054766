"""`Detections`: the result of running one image through a detection model.

Coordinate conventions:

* ``boxes`` are TFOD's normalised ``[ymin, xmin, ymax, xmax]`` in ``[0, 1]`` of the image the
  model saw (the upright image); `pixel_boxes()` gives absolute ``[xmin, ymin, xmax, ymax]``
  and `coco_boxes()` COCO's ``[x, y, w, h]`` absolute pixels.
* ``masks`` are full-image binary masks ``(N, H, W)`` uint8 of 0/1 (already pasted from the
  model's box-relative masks), or ``None`` for a box-only model.
* ``classes`` are label-map ids (1..N, 0 is never a detection class).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Dict, List, Optional

import numpy as np

if TYPE_CHECKING:
    from tfod_seg.labelmap import LabelMap


@dataclasses.dataclass(eq=False)
class Detections:
    """Detections of one image; validates shapes on construction."""

    boxes: np.ndarray  # (N, 4) float32, normalised [ymin, xmin, ymax, xmax]
    classes: np.ndarray  # (N,) int64 label-map ids
    scores: np.ndarray  # (N,) float32
    masks: Optional[np.ndarray]  # (N, H, W) uint8 0/1, full image
    height: int
    width: int

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        n = len(self.boxes)
        self.classes = np.asarray(self.classes).reshape(-1).astype(np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(self.classes) != n or len(self.scores) != n:
            raise ValueError(f"boxes ({n}), classes ({len(self.classes)}) and scores ({len(self.scores)}) differ in length")
        self.height, self.width = int(self.height), int(self.width)
        if self.masks is not None:
            masks = np.asarray(self.masks)
            if masks.ndim != 3 or masks.shape[0] != n or masks.shape[1:] != (self.height, self.width):
                raise ValueError(
                    f"masks must be (N={n}, H={self.height}, W={self.width}), got {masks.shape}"
                )
            self.masks = masks.astype(np.uint8, copy=False)

    @classmethod
    def empty(cls, height: int, width: int, with_masks: bool = True) -> "Detections":
        return cls(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.int64), np.zeros((0,), np.float32),
            np.zeros((0, height, width), np.uint8) if with_masks else None, height, width,
        )

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index) -> "Detections":
        """Select detections by an index array or a boolean mask (always returns `Detections`)."""
        index = np.asarray(index)
        if index.ndim == 0:
            index = index.reshape(1)
        return Detections(
            self.boxes[index], self.classes[index], self.scores[index],
            None if self.masks is None else self.masks[index], self.height, self.width,
        )

    def filter(self, min_score: float = 0.0, classes=None) -> "Detections":
        """Keep detections with ``score >= min_score`` (and class in ``classes`` if given)."""
        keep = self.scores >= min_score
        if classes is not None:
            keep &= np.isin(self.classes, np.asarray(list(classes)))
        return self[np.flatnonzero(keep)]

    def sorted(self) -> "Detections":
        """Highest score first."""
        return self[np.argsort(-self.scores, kind="stable")]

    def pixel_boxes(self) -> np.ndarray:
        """``(N, 4)`` float32 absolute ``[xmin, ymin, xmax, ymax]`` pixels."""
        b = self.boxes
        scale = np.array([self.width, self.height, self.width, self.height], np.float32)
        return np.stack([b[:, 1], b[:, 0], b[:, 3], b[:, 2]], axis=1) * scale

    def coco_boxes(self) -> np.ndarray:
        """``(N, 4)`` float32 COCO ``[x, y, w, h]`` absolute pixels."""
        p = self.pixel_boxes()
        return np.stack([p[:, 0], p[:, 1], p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]], axis=1)

    def class_names(self, label_map: Optional["LabelMap"] = None) -> List[str]:
        """Display names for ``classes`` (``'class <id>'`` when the id is not in the label map)."""
        out = []
        for c in self.classes.tolist():
            item = label_map.get(c) if label_map is not None else None
            out.append(item.shown if item is not None else f"class {c}")
        return out

    def to_dict(self) -> Dict[str, np.ndarray]:
        return {"boxes": self.boxes, "classes": self.classes, "scores": self.scores, "masks": self.masks}
