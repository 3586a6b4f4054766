"""Paste box-relative instance masks into full-image masks.

A TFOD2 export returns ``detection_masks`` as ``(N, h, w)`` probabilities in ``[0, 1]`` that
cover each detection's box (normalised ``[ymin, xmin, ymax, xmax]``). `paste_masks` places
them on the full image exactly as TFOD2's exporter does for ``detection_masks_reframed``
(`object_detection.utils.ops.reframe_box_masks_to_image_masks`: ``tf.image.crop_and_resize``
of each mask with the inverse box, bilinear, zero outside, then ``> threshold``): image
row ``i`` samples mask row ``(h - 1) * (i / (H - 1) - ymin) / (ymax - ymin)``. So masks pasted
here and an export's own reframed masks agree.

The work is vectorised per instance (two small matrix products with bilinear weights over
the box's rows and columns only), never a Python loop over pixels.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def _axis_weights(lo: float, hi: float, full: int, size: int) -> Tuple[int, np.ndarray]:
    """Bilinear weights ``(n_out, size)`` from ``size`` mask samples to the image rows (or
    columns) that fall inside ``[lo, hi]`` (normalised); returns (first image index, weights)."""
    denom = max(hi - lo, 1e-4)
    if full == 1:
        first, idx = 0, np.zeros(1)
        pos = np.array([0.5])
    else:
        first = max(int(np.floor(lo * (full - 1))), 0)
        last = min(int(np.ceil(hi * (full - 1))), full - 1)
        if last < first:
            return first, np.zeros((0, size), np.float32)
        idx = np.arange(first, last + 1, dtype=np.float64)
        pos = idx / (full - 1)
    v = (size - 1) * (pos - lo) / denom
    eps = 1e-6
    valid = (v >= -eps) & (v <= size - 1 + eps)
    v = np.clip(v, 0, size - 1)
    v0 = np.floor(v).astype(np.int64)
    v1 = np.minimum(v0 + 1, size - 1)
    frac = v - v0
    weights = np.zeros((len(v), size), np.float64)
    rows = np.arange(len(v))
    weights[rows, v0] = 1.0 - frac
    weights[rows, v1] += frac  # each row once, so fancy += is exact (v1 == v0 only when frac == 0)
    weights[~valid] = 0.0
    return first, weights.astype(np.float32)


def paste_masks(box_masks: np.ndarray, boxes: np.ndarray, height: int, width: int,
                threshold: float = 0.5) -> np.ndarray:
    """Full-image binary masks ``(N, height, width)`` uint8 of 0/1.

    ``box_masks``: ``(N, h, w)`` float in ``[0, 1]`` (box-relative); ``boxes``: ``(N, 4)``
    normalised ``[ymin, xmin, ymax, xmax]``. A pixel is foreground when the bilinearly
    resampled probability is ``> threshold``.
    """
    box_masks = np.asarray(box_masks, dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if box_masks.ndim != 3 or len(box_masks) != len(boxes):
        raise ValueError(f"box masks must be (N, h, w) with N={len(boxes)}, got {box_masks.shape}")
    n, h, w = box_masks.shape
    out = np.zeros((n, height, width), np.uint8)
    for k in range(n):
        ymin, xmin, ymax, xmax = boxes[k]
        y_first, wy = _axis_weights(ymin, ymax, height, h)
        x_first, wx = _axis_weights(xmin, xmax, width, w)
        if wy.size == 0 or wx.size == 0:
            continue
        crop = wy @ box_masks[k] @ wx.T
        out[k, y_first:y_first + len(wy), x_first:x_first + len(wx)] = crop > threshold
    return out


def full_image_masks(outputs: dict, height: int, width: int, threshold: float = 0.5):
    """Full-image masks from one image's signature outputs (batch dimension removed), or None.

    Uses ``detection_masks_reframed`` when the export has it at the image's size; otherwise
    pastes ``detection_masks`` into ``height x width``; ``None`` for a box-only export.
    """
    reframed = outputs.get("detection_masks_reframed")
    if reframed is not None:
        reframed = np.asarray(reframed)
        if reframed.ndim == 3 and reframed.shape[1:] == (height, width):
            if reframed.dtype == np.uint8:
                return (reframed > 0).astype(np.uint8)
            return (reframed > threshold).astype(np.uint8)
    masks = outputs.get("detection_masks")
    if masks is None:
        return None
    return paste_masks(masks, outputs["detection_boxes"], height, width, threshold)
