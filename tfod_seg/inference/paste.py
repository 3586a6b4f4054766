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
    return _paste(box_masks, boxes, height, width, threshold, _axis_weights)


def _paste(box_masks, boxes, height: int, width: int, threshold: float, weights) -> np.ndarray:
    """Paste each box mask with ``weights(lo, hi, size, mask_size) -> (first, matrix)`` per axis:
    the image rows (columns) are ``matrix @ mask`` from index ``first`` on."""
    box_masks = np.asarray(box_masks, dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if box_masks.ndim != 3 or len(box_masks) != len(boxes):
        raise ValueError(f"box masks must be (N, h, w) with N={len(boxes)}, got {box_masks.shape}")
    n, h, w = box_masks.shape
    out = np.zeros((n, height, width), np.uint8)
    for k in range(n):
        ymin, xmin, ymax, xmax = boxes[k]
        y_first, wy = weights(ymin, ymax, height, h)
        x_first, wx = weights(xmin, xmax, width, w)
        if wy.size == 0 or wx.size == 0:
            continue
        values = wy @ box_masks[k] @ wx.T
        out[k, y_first:y_first + len(wy), x_first:x_first + len(wx)] = values > threshold
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


def _centred_weights(lo: float, hi: float, full: int, size: int) -> Tuple[int, np.ndarray]:
    """Bilinear weights ``(n_out, size)`` from a box mask's ``size`` samples to image pixel
    centres (or columns) in ``[lo, hi]`` (normalised), pixel-centre convention, zero outside."""
    span = max(hi - lo, 1e-6)
    # Mask coordinate (pixel-centre units, 0 = centre of the first mask pixel) of image pixel k.
    first = max(int(np.floor((lo - span / size) * full - 0.5)), 0)
    last = min(int(np.ceil((hi + span / size) * full + 0.5)), full - 1)
    if last < first:
        return first, np.zeros((0, size), np.float32)
    k = np.arange(first, last + 1, dtype=np.float64)
    u = size * ((k + 0.5) / full - lo) / span - 0.5 + 1.0  # +1: index in the zero-padded mask
    valid = (u >= 0) & (u <= size + 1)
    u = np.clip(u, 0, size + 1)
    u0 = np.floor(u).astype(np.int64)
    u1 = np.minimum(u0 + 1, size + 1)
    frac = u - u0
    padded = np.zeros((len(u), size + 2), np.float64)
    rows = np.arange(len(u))
    padded[rows, u0] = 1.0 - frac
    padded[rows, u1] += frac
    padded[~valid] = 0.0
    return first, padded[:, 1:-1].astype(np.float32)  # the padding pixels are 0: drop their columns


def paste_masks_centred(box_masks: np.ndarray, boxes: np.ndarray, height: int, width: int,
                        threshold: float = 0.5) -> np.ndarray:
    """Full-image 0/1 masks ``(N, height, width)`` from box masks, with the convention of this
    project's SavedModel ``detection_masks_reframed`` (`tfod_seg.engines.garden.signature.
    reframe_box_masks`, Model Garden's ``paste_instance_masks``): mask pixel ``(i, j)`` covers
    the i-th of ``h`` equal rows of its box, image pixel centres are sampled bilinearly with
    zero outside the mask, and a pixel is foreground when the value is ``> threshold``.

    ``boxes``: ``(N, 4)`` normalised ``[ymin, xmin, ymax, xmax]`` of the boxes the masks were
    predicted over (not clipped to the image)."""
    return _paste(box_masks, boxes, height, width, threshold, _centred_weights)
