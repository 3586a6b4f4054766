"""Read TFRecords back, check them against what the decoders expect, summarise, render overlays.

Checks per example (each failure is a problem naming the file, record index and source id):

* mask count equals box count (and class, is_crowd, area counts agree);
* every mask has the image's size, and the image decodes to ``image/height`` x ``image/width``;
* boxes are inside [0, 1] with ``min < max``;
* labels are in the label map (when given) and ``class/text`` matches the map's name;
* masks are binary (stored values only 0 and 1).
"""

from __future__ import annotations

import collections
import os
from typing import Dict, List, Optional

from tfod_seg import io
from tfod_seg.labelmap import LabelMap
from tfod_seg.records.convert import class_count_lines
from tfod_seg.records.reader import RecordExample, decode_png_mask, iter_raw_records, parse_example

# COCO's small / medium / large split (mask area in pixels)
SMALL, LARGE = 32 ** 2, 96 ** 2


def check_example(ex: RecordExample, label_map: Optional[LabelMap] = None) -> List[str]:
    """Problems found in one example (empty list: fine)."""
    import numpy as np

    problems = []
    n = len(ex.boxes)
    if len(ex.masks) != n:
        problems.append(f"{len(ex.masks)} masks for {n} boxes")
    for name, arr in (("class labels", ex.classes), ("is_crowd values", ex.is_crowd), ("area values", ex.area)):
        if len(arr) not in (n, 0) or (name == "class labels" and len(arr) != n):
            problems.append(f"{len(arr)} {name} for {n} boxes")
    if ex.class_texts and len(ex.class_texts) != n:
        problems.append(f"{len(ex.class_texts)} class texts for {n} boxes")
    if n:
        b = ex.boxes
        if not np.all(np.isfinite(b)) or b.min() < 0 or b.max() > 1:
            problems.append(f"box coordinates outside [0, 1]: min {b.min():.4f}, max {b.max():.4f}")
        bad = np.nonzero((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1]))[0]
        if len(bad):
            problems.append(f"boxes {bad[:5].tolist()} have ymin >= ymax or xmin >= xmax")
    if len(ex.masks) and ex.masks.shape[1:] != (ex.height, ex.width):
        problems.append(f"mask size {ex.masks.shape[2]}x{ex.masks.shape[1]} differs from image size "
                        f"{ex.width}x{ex.height}")
    for k, raw in enumerate(ex.raw_masks or []):
        if isinstance(raw, bytes):
            vals = np.unique(decode_png_mask(raw, ex.path))
        else:
            vals = np.unique(raw)
        if not set(vals.tolist()) <= {0, 1}:
            problems.append(f"mask {k} is not binary (values {vals[:6].tolist()}{'...' if len(vals) > 6 else ''})")
            break
    if label_map is not None:
        for k, c in enumerate(ex.classes.tolist()):
            item = label_map.get(int(c))
            if item is None:
                problems.append(f"instance {k} label {c} is not in the label map {label_map.path or ''}".rstrip())
            elif ex.class_texts and k < len(ex.class_texts) and ex.class_texts[k] not in (item.name, item.display_name):
                problems.append(f"instance {k} label {c} is '{item.name}' in the label map but class/text "
                                f"says '{ex.class_texts[k]}'")
    try:
        img = ex.image()
        if img.shape[:2] != (ex.height, ex.width):
            problems.append(f"image decodes to {img.shape[1]}x{img.shape[0]}, record says {ex.width}x{ex.height}")
    except Exception as e:  # any decode failure is a problem to report, not a crash
        problems.append(f"image does not decode: {e}")
    return problems


def inspect_records(patterns, *, label_map: Optional[LabelMap] = None, render: int = 0,
                    out_dir: Optional[str] = None, progress=None) -> dict:
    """Check every example in ``patterns``; return statistics and problems.

    With ``render`` > 0, writes PNG overlays of the first ``render`` examples to ``out_dir``.
    """
    import numpy as np

    problems: List[dict] = []
    per_file: Dict[str, int] = collections.Counter()
    per_class: Dict[str, int] = collections.Counter()
    sizes = collections.Counter()
    buckets = collections.Counter()
    inst_per_image: List[int] = []
    crowd = 0
    rendered: List[str] = []
    for path, idx, raw in iter_raw_records(patterns):
        try:
            ex = parse_example(raw, path, idx)
        except Exception as e:
            problems.append({"file": path, "record": idx, "source_id": None, "problem": f"cannot parse: {e}"})
            continue
        per_file[path] += 1
        for p in check_example(ex, label_map):
            problems.append({"file": path, "record": idx, "source_id": ex.source_id, "problem": p})
        n = len(ex.boxes)
        inst_per_image.append(n)
        sizes[(ex.width, ex.height)] += 1
        crowd += int(ex.is_crowd.sum()) if len(ex.is_crowd) else 0
        for k, c in enumerate(ex.classes.tolist()):
            name = label_map.name_of(c) if label_map is not None and label_map.get(c) else (
                ex.class_texts[k] if k < len(ex.class_texts) else str(c))
            per_class[name] += 1
        if len(ex.masks) == n and n:
            areas = ex.masks.reshape(n, -1).sum(axis=1)
            for a in areas.tolist():
                buckets["small" if a < SMALL else "large" if a >= LARGE else "medium"] += 1
        if render and len(rendered) < render and out_dir:
            rendered.append(render_overlay(ex, out_dir, label_map))
        if progress is not None:
            progress.update(1)
    images = len(inst_per_image)
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    return {
        "files": dict(per_file),
        "images": images,
        "instances": int(sum(inst_per_image)),
        "images_without_instances": sum(1 for n in inst_per_image if n == 0),
        "instances_per_image": {"mean": float(np.mean(inst_per_image)) if images else 0.0,
                                "max": int(max(inst_per_image, default=0))},
        "instances_per_class": dict(sorted(per_class.items())),
        "crowd_instances": crowd,
        "mask_area": {k: buckets[k] for k in ("small", "medium", "large")},
        "image_sizes": {"distinct": len(sizes), "min_wh": [min(widths, default=0), min(heights, default=0)],
                        "max_wh": [max(widths, default=0), max(heights, default=0)]},
        "label_map": (label_map.path or "given") if label_map is not None else None,
        "problems": problems,
        "num_problems": len(problems),
        "rendered": rendered,
    }


def _color(k: int):
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((k * 0.618034) % 1.0, 0.75, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def render_overlay(ex: RecordExample, out_dir: str, label_map: Optional[LabelMap] = None) -> str:
    """PNG of the image with each instance's mask (tinted), box and label; returns its path."""
    import numpy as np
    from PIL import Image, ImageDraw

    img = ex.image().astype(np.float32)
    for k in range(min(len(ex.masks), len(ex.boxes))):
        c = np.asarray(_color(int(ex.classes[k]) if len(ex.classes) > k else k), np.float32)
        m = ex.masks[k].astype(bool)
        img[m] = img[m] * 0.5 + c * 0.5
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for k, (ymin, xmin, ymax, xmax) in enumerate(ex.boxes.tolist()):
        c = _color(int(ex.classes[k]) if len(ex.classes) > k else k)
        box = (xmin * ex.width, ymin * ex.height, xmax * ex.width, ymax * ex.height)
        draw.rectangle(box, outline=c, width=2)
        cid = int(ex.classes[k]) if len(ex.classes) > k else -1
        name = (label_map.name_of(cid) if label_map is not None and label_map.get(cid) else
                ex.class_texts[k] if k < len(ex.class_texts) else str(cid))
        text = name + (" (crowd)" if len(ex.is_crowd) > k and ex.is_crowd[k] else "")
        tw = draw.textlength(text)
        ty = max(0, box[1] - 12)
        draw.rectangle((box[0], ty, box[0] + tw + 4, ty + 12), fill=c)
        draw.text((box[0] + 2, ty), text, fill=(0, 0, 0))
    io.makedirs(out_dir, "overlay folder")
    stem = os.path.splitext(os.path.basename((ex.filename or ex.source_id or "image").replace("\\", "/")))[0]
    stem = "".join(c if c.isalnum() or c in "-_. " else "_" for c in stem)[:100] or "image"
    out = io.join(out_dir, f"{os.path.splitext(io.basename(ex.path))[0]}_{ex.index:05d}_{stem}.png")
    with io.atomic_path(out) as tmp:
        pil.save(tmp, format="PNG")
    return out


def format_inspection(stats: dict, max_problems: int = 20) -> str:
    lines = [f"{stats['images']} images, {stats['instances']} instances "
             f"({stats['images_without_instances']} images without instances, "
             f"{stats['instances_per_image']['mean']:.2f} per image, max {stats['instances_per_image']['max']}, "
             f"{stats['crowd_instances']} crowd)"]
    for f, n in stats["files"].items():
        lines.append(f"  {f}: {n} records")
    lines += class_count_lines(stats["instances_per_class"])
    ma = stats["mask_area"]
    lines.append(f"mask area: {ma['small']} small (<32²), {ma['medium']} medium, {ma['large']} large (>=96²)")
    sz = stats["image_sizes"]
    lines.append(f"image sizes: {sz['distinct']} distinct, from {sz['min_wh'][0]}x{sz['min_wh'][1]} "
                 f"to {sz['max_wh'][0]}x{sz['max_wh'][1]}")
    if stats["num_problems"]:
        lines.append(f"PROBLEMS: {stats['num_problems']}")
        for p in stats["problems"][:max_problems]:
            lines.append(f"  {p['file']}#{p['record']} (source_id {p['source_id']}): {p['problem']}")
        if stats["num_problems"] > max_problems:
            lines.append(f"  ... {stats['num_problems'] - max_problems} more")
    else:
        lines.append("checks: all passed (mask count = box count, mask size = image size, boxes in [0, 1], "
                     "binary masks" + (", labels in the label map" if stats.get("label_map") else "") + ")")
    for r in stats["rendered"]:
        lines.append(f"rendered {r}")
    return "\n".join(lines)
