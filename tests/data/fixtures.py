"""Synthetic images and annotation datasets built in code, shared by the converter tests."""

from __future__ import annotations

import io
import os
from typing import List

import numpy as np
from PIL import Image

from tfod_seg.annotations.labelme import write_labelme


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth, photo-like uint8 RGB image (gradients + blobs), deterministic from ``seed``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(0.5, 3, 2).tolist() + [rng.uniform(0, 6.28)]
        img[..., c] = 127 + 80 * np.sin(xx / width * fx * 6.28 + ph) * np.cos(yy / height * fy * 6.28)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(arr: np.ndarray, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def write_jpeg(path, width, height, seed=0, **kw) -> bytes:
    data = encode(photo(width, height, seed), "JPEG", quality=90, **kw)
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return data


def square(x, y, s) -> List[List[float]]:
    return [[x, y], [x + s, y], [x + s, y + s], [x, y + s]]


def labelme_dataset(root, n: int = 4, width: int = 96, height: int = 64) -> List[str]:
    """``n`` LabelMe files with images beside them: polygons, a rectangle, a circle, a grouped
    two-part instance. Returns the JSON paths."""
    os.makedirs(root, exist_ok=True)
    paths = []
    for i in range(n):
        img = f"img_{i:03d}.jpg"
        write_jpeg(os.path.join(root, img), width, height, seed=i)
        shapes = [
            {"label": "cat", "points": [[5 + i, 5], [40, 8], [30, 40], [8, 30]], "shape_type": "polygon"},
            {"label": "dog", "points": [[50, 10], [80, 40]], "shape_type": "rectangle"},
            {"label": "ball", "points": [[20, 50], [26, 50]], "shape_type": "circle"},
            # one occluded object drawn in two parts
            {"label": "dog", "points": square(60, 45, 8), "shape_type": "polygon", "group_id": 7},
            {"label": "dog", "points": square(75, 45, 8), "shape_type": "polygon", "group_id": 7},
        ]
        path = os.path.join(root, f"img_{i:03d}.json")
        write_labelme(path, image_path=img, height=height, width=width, shapes=shapes)
        paths.append(path)
    return paths
