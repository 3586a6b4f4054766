"""Overlay drawing with OpenCV: instance masks, outlines, boxes, class names and scores.

Boxes given to these functions are absolute pixels ``[xmin, ymin, xmax, ymax]``; images are
uint8 RGB ``(H, W, 3)``; masks are full-image ``(N, H, W)`` 0/1. Nothing here reads files.
"""

from __future__ import annotations

import colorsys
from typing import Optional, Sequence

import numpy as np

from tfod_seg.inference.formats import mask_bounds

_GOLDEN = 0.618033988749895


def instance_colors(n: int, offset: int = 0) -> np.ndarray:
    """``(n, 3)`` uint8 RGB colours, distinct for neighbouring indices (golden-ratio hues)."""
    out = np.zeros((n, 3), np.uint8)
    for i in range(n):
        hue = ((i + offset) * _GOLDEN + 0.11) % 1.0
        sat = 0.85 if (i + offset) % 2 == 0 else 0.65
        r, g, b = colorsys.hsv_to_rgb(hue, sat, 1.0)
        out[i] = (int(r * 255), int(g * 255), int(b * 255))
    return out


def draw_instances(image: np.ndarray, *, masks: Optional[np.ndarray] = None, boxes: Optional[np.ndarray] = None,
                   labels: Optional[Sequence[str]] = None, scores: Optional[Sequence[float]] = None,
                   colors: Optional[np.ndarray] = None, alpha: float = 0.45,
                   bounds: Optional[Sequence] = None) -> np.ndarray:
    """A copy of ``image`` with each instance's mask tinted, outlined, its box drawn and
    ``"label 0.93"`` written above the box. Any of masks/boxes/labels/scores may be None.
    ``bounds``: each mask's `tfod_seg.inference.formats.mask_bounds` when already known."""
    import cv2

    img = np.ascontiguousarray(image, dtype=np.uint8).copy()
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    h, w = img.shape[:2]
    n = len(masks) if masks is not None else (len(boxes) if boxes is not None else 0)
    if n == 0:
        return img
    colors = instance_colors(n) if colors is None else np.asarray(colors, np.uint8)
    if masks is not None and len(masks) and bounds is None:
        bounds = [mask_bounds(m) for m in masks]
    if masks is not None and len(masks):
        thickness = max(1, round(min(h, w) / 300))
        for k in range(n):  # each instance touches only its own bounding box
            if bounds[k] is None:
                continue
            y0, y1, x0, x1 = bounds[k]
            m = np.ascontiguousarray(masks[k, y0:y1, x0:x1], dtype=np.uint8)
            region = img[y0:y1, x0:x1]  # a view: blended in place, inside the mask only
            tint = np.empty_like(region)
            tint[:] = colors[k]
            cv2.copyTo(cv2.addWeighted(region, 1.0 - alpha, tint, alpha, 0.0), m, region)
            contours, _ = cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))
            cv2.drawContours(img, contours, -1, tuple(int(c) for c in colors[k]), thickness)
    font_scale = max(0.3, min(h, w) / 700)
    line = max(1, round(min(h, w) / 400))
    for k in range(n):
        color = tuple(int(c) for c in colors[k])
        if boxes is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in boxes[k])
            cv2.rectangle(img, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), color, line)
        else:
            if bounds[k] is None:
                continue
            y0, _, x0, _ = bounds[k]
        text = []
        if labels is not None:
            text.append(str(labels[k]))
        if scores is not None:
            text.append(f"{float(scores[k]):.2f}")
        if text:
            _label(img, " ".join(text), x0, y0, color, font_scale)
    return img


def _label(img, text, x, y, color, scale):
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, 1)
    y_top = y - th - base - 2
    if y_top < 0:  # no room above the box: write inside it
        y_top = y
    x = min(max(x, 0), max(img.shape[1] - tw - 2, 0))
    cv2.rectangle(img, (x, y_top), (x + tw + 2, y_top + th + base + 2), color, -1)
    dark = sum(color) > 380
    cv2.putText(img, text, (x + 1, y_top + th + 1), font, scale, (0, 0, 0) if dark else (255, 255, 255), 1,
                cv2.LINE_AA)


def draw_detections(image: np.ndarray, detections, label_map=None, *, alpha: float = 0.45,
                    bounds: Optional[Sequence] = None) -> np.ndarray:
    """Overlay of a `tfod_seg.inference.Detections` (distinct colour per instance)."""
    return draw_instances(image, masks=detections.masks, boxes=detections.pixel_boxes(),
                          labels=detections.class_names(label_map), scores=detections.scores, alpha=alpha,
                          bounds=bounds)


def titled(image: np.ndarray, title: str) -> np.ndarray:
    """``image`` with a title strip above it."""
    import cv2

    h, w = image.shape[:2]
    scale = max(0.4, min(w, 1000) / 900)
    (tw, th), base = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if tw > w - 8:  # shrink to fit narrow images
        scale = max(0.25, scale * (w - 8) / tw)
        (tw, th), base = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    strip = np.full((th + base + 8, w, 3), 255, np.uint8)
    cv2.putText(strip, title, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, image], axis=0)


def side_by_side(panels: Sequence[np.ndarray], gap: int = 6) -> np.ndarray:
    """Panels next to each other (padded to the tallest), separated by a white gap."""
    height = max(p.shape[0] for p in panels)
    parts = []
    for i, p in enumerate(panels):
        if p.shape[0] < height:
            p = np.concatenate([p, np.full((height - p.shape[0], p.shape[1], 3), 255, np.uint8)], axis=0)
        if i:
            parts.append(np.full((height, gap, 3), 255, np.uint8))
        parts.append(p)
    return np.concatenate(parts, axis=1)


def semantic_map(masks: np.ndarray, classes: Sequence[int], scores: Optional[Sequence[float]] = None,
                 shape=None, bounds: Optional[Sequence] = None) -> np.ndarray:
    """Per-pixel class ids (0 = background) from instance masks; where instances overlap, the
    higher-scoring one wins. uint8, or uint16 when an id exceeds 255. ``bounds``: each mask's
    `tfod_seg.inference.formats.mask_bounds` when known (then only those crops are touched)."""
    classes = np.asarray(classes, np.int64)
    if shape is None:
        shape = masks.shape[1:]
    dtype = np.uint16 if len(classes) and classes.max() > 255 else np.uint8
    out = np.zeros(shape, dtype)
    order = np.argsort(np.asarray(scores), kind="stable") if scores is not None else np.arange(len(classes))
    for k in order:  # ascending score: the best is painted last
        if bounds is None:
            out[masks[k].astype(bool)] = classes[k]
        elif bounds[k] is not None:
            y0, y1, x0, x1 = bounds[k]
            out[y0:y1, x0:x1][masks[k, y0:y1, x0:x1].astype(bool)] = classes[k]
    return out
