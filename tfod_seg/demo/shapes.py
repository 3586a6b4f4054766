"""A generated instance-segmentation dataset of shapes, written in LabelMe format.

`generate_shapes_dataset` draws images of circles, squares and triangles on noisy gradient
backgrounds and writes one LabelMe 5 JSON per image beside the image, plus a
`label_map.pbtxt`. It is the demo's dataset and the tests' fixture: deterministic from the
seed, small, and hard enough that a detector must look at shape (colours are random for every
class, so colour says nothing about the class).

What is in it:

* three classes, ``circle``, ``square``, ``triangle`` (ids 1, 2, 3 in that order, as in
  `label_maps/shapes_label_map.pbtxt`);
* 1 to ``max_objects`` objects per image, sizes from about 16% to 48% of the image side,
  random colours (kept apart from the background), squares and triangles rotated;
* overlaps: objects are drawn in order and later ones occlude earlier ones. An occluded
  object is annotated with its *visible* part; when the occluder splits it in pieces, each
  piece is its own LabelMe polygon and the pieces share a ``group_id`` (LabelMe's way of
  saying "one instance"). Placements that would hide most of an object, leave a piece too
  small to outline, or punch a hole into it are redrawn, so every annotation is exact;
* backgrounds: a linear gradient between two random colours plus Gaussian noise, sometimes
  with faint random lines as clutter.

Coordinates are LabelMe's: polygon points ``[x, y]`` in absolute pixels.
"""

from __future__ import annotations

import logging
import math
from typing import Dict, List, Optional

from tfod_seg import io
from tfod_seg.annotations.labelme import write_labelme
from tfod_seg.io import atomic_write_bytes
from tfod_seg.labelmap import LabelMap

CLASSES = ("circle", "square", "triangle")

logger = logging.getLogger(__name__)

_MIN_VISIBLE_FRACTION = 0.45  # an occluded object keeps at least this much of its area
_MIN_PART_AREA = 12.0  # pixels; smaller visible pieces cannot be outlined reliably


def _background(rng, size: int):
    import numpy as np

    c0 = rng.uniform(0, 255, 3)
    c1 = rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    img += rng.normal(0, rng.uniform(3, 10), img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:  # clutter: faint lines that are not objects
        import cv2

        for _ in range(int(rng.integers(1, 4))):
            p0 = tuple(int(v) for v in rng.integers(0, size, 2))
            p1 = tuple(int(v) for v in rng.integers(0, size, 2))
            colour = tuple(int(v) for v in np.clip(img[p0[1], p0[0]].astype(int) + rng.integers(-40, 40, 3), 0, 255))
            cv2.line(img, p0, p1, colour, 1, cv2.LINE_AA)
    return img


def _shape_polygon(rng, label: str, cx: float, cy: float, r: float):
    """The exact outline of one shape as an (N, 2) float array of (x, y) pixel points."""
    import numpy as np

    if label == "circle":
        n = 32
        angles = np.linspace(0, 2 * math.pi, n, endpoint=False)
    elif label == "square":
        angles = rng.uniform(0, math.pi / 2) + np.arange(4) * math.pi / 2
    else:  # equilateral triangle, circumradius r
        angles = rng.uniform(0, 2 * math.pi) + np.arange(3) * 2 * math.pi / 3
        r = r * 1.15  # same visual size as the others
    return np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)


def _fill(shape_hw, poly, value=1):
    import cv2
    import numpy as np

    mask = np.zeros(shape_hw, np.uint8)
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], value, lineType=cv2.LINE_8, shift=4)
    return mask


def _contrasting_colour(rng, background_mean):
    import numpy as np

    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if np.abs(colour - background_mean).sum() > 150:
            return colour
    return 255.0 - background_mean


def _visible_parts(mask) -> Optional[List[List[List[float]]]]:
    """Outline a visible mask as polygons, or None when it has holes or a tiny piece."""
    import cv2

    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None or len(contours) == 0:
        return None
    parts = []
    for contour, h in zip(contours, hierarchy[0]):
        if h[3] != -1:  # a hole inside a piece: LabelMe polygons cannot express it
            return None
        if len(contour) < 3 or cv2.contourArea(contour) < _MIN_PART_AREA:
            return None
        parts.append([[float(x), float(y)] for x, y in contour[:, 0, :]])
    return parts


def _generate_image(rng, size: int, max_objects: int):
    """One image and its objects: (label, parts, occluded) with parts as lists of [x, y]."""
    import numpy as np

    img = _background(rng, size)
    bg_mean = img.reshape(-1, 3).mean(axis=0)
    full_masks: List = []
    visible: List = []
    labels: List[str] = []
    colours: List = []
    polys: List = []
    target = int(rng.integers(1, max_objects + 1))
    attempts = 0
    while len(labels) < target and attempts < target * 15:
        attempts += 1
        label = CLASSES[int(rng.integers(0, len(CLASSES)))]
        r = rng.uniform(0.10, 0.30) * size / 2 * 1.6
        cx = rng.uniform(r * 0.6, size - r * 0.6)
        cy = rng.uniform(r * 0.6, size - r * 0.6)
        poly = _shape_polygon(rng, label, cx, cy, r)
        poly[:, 0] = np.clip(poly[:, 0], 0, size - 1)
        poly[:, 1] = np.clip(poly[:, 1], 0, size - 1)
        mask = _fill((size, size), poly)
        if mask.sum() < 60:
            continue
        # Would this object hide too much of, or cut holes into, an earlier one?
        new_visible = [v & (1 - mask) for v in visible]
        ok = True
        for old_full, new_vis in zip(full_masks, new_visible):
            if new_vis.sum() < _MIN_VISIBLE_FRACTION * old_full.sum() or _visible_parts(new_vis) is None:
                ok = False
                break
        if not ok:
            continue
        visible = new_visible + [mask]
        full_masks.append(mask)
        labels.append(label)
        colours.append(_contrasting_colour(rng, bg_mean))
        polys.append(poly)
    for poly, colour in zip(polys, colours):
        import cv2

        cv2.fillPoly(img, [np.round(poly * 16).astype(np.int32)], tuple(float(c) for c in colour),
                     lineType=cv2.LINE_8, shift=4)
    objects = []
    for label, poly, full, vis in zip(labels, polys, full_masks, visible):
        if int(vis.sum()) == int(full.sum()):
            parts = [[[float(x), float(y)] for x, y in poly]]  # unoccluded: the exact geometry
            objects.append((label, parts, False))
        else:
            objects.append((label, _visible_parts(vis), True))
    return img, objects


def _write_json(json_path: str, image_path: str, height: int, width: int, shapes: List[dict]) -> None:
    write_labelme(json_path, image_path=image_path, height=height, width=width, shapes=shapes)


def generate_shapes_dataset(out_dir, num_images: int, image_size: int = 192, seed: int = 0,
                            *, max_objects: int = 4, image_format: str = "jpg") -> Dict:
    """Write ``num_images`` LabelMe-annotated shape images to ``out_dir``.

    Files: ``out_dir/shapes_NNNNN.jpg`` + ``out_dir/shapes_NNNNN.json`` (LabelMe 5, image path
    relative to the JSON) and ``out_dir/label_map.pbtxt``. The same ``seed`` gives the same
    files. Returns a summary dict: ``out_dir``, ``num_images``, ``image_size``, ``seed``,
    ``classes``, ``label_map`` (path), ``num_instances``, ``instances_per_class``,
    ``num_occluded`` (annotated with their visible part), ``num_multipart`` (occluded into
    pieces sharing a ``group_id``).
    """
    import cv2
    import numpy as np


    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32 pixels, got {image_size}")
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    out_dir = io.makedirs(out_dir, "shapes dataset folder")
    per_class = {c: 0 for c in CLASSES}
    num_occluded = num_multipart = 0
    for i in range(num_images):
        rng = np.random.default_rng([seed, i])  # per image: any subset regenerates identically
        img, objects = _generate_image(rng, image_size, max_objects)
        stem = f"shapes_{i:05d}"
        image_name = f"{stem}.{image_format}"
        ext = ".jpg" if image_format == "jpg" else ".png"
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format == "jpg" else []
        ok, buf = cv2.imencode(ext, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise RuntimeError(f"OpenCV could not encode {image_name}")
        atomic_write_bytes(io.join(out_dir, image_name), buf.tobytes())
        shapes = []
        for obj_index, (label, parts, occluded) in enumerate(objects):
            per_class[label] += 1
            group_id = obj_index + 1 if len(parts) > 1 else None
            if len(parts) > 1:
                num_multipart += 1
            num_occluded += int(occluded)
            for points in parts:
                shapes.append({
                    "label": label,
                    "points": [[round(x, 2), round(y, 2)] for x, y in points],
                    "group_id": group_id,
                    "description": "",
                    "shape_type": "polygon",
                    "flags": {},
                })
        _write_json(io.join(out_dir, f"{stem}.json"), image_name, image_size, image_size, shapes)
    label_map_path = io.join(out_dir, "label_map.pbtxt")
    LabelMap.from_names(list(CLASSES)).write(label_map_path)
    summary = {
        "out_dir": out_dir,
        "num_images": num_images,
        "image_size": image_size,
        "seed": seed,
        "classes": list(CLASSES),
        "label_map": label_map_path,
        "num_instances": sum(per_class.values()),
        "instances_per_class": per_class,
        "num_occluded": num_occluded,
        "num_multipart": num_multipart,
    }
    logger.info("wrote %d shape images (%d instances) to %s", num_images, summary["num_instances"], out_dir)
    return summary
