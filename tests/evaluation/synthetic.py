"""Synthetic COCO ground truth and predictions with known answers."""

from __future__ import annotations

import numpy as np

from tfod_seg.inference.formats import encode_rle

H, W = 100, 120
CATEGORIES = [{"id": 1, "name": "square"}, {"id": 2, "name": "bar"}]


def square_mask(x, y, w, h):
    m = np.zeros((H, W), np.uint8)
    m[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = 1
    return m


def gt_doc(num_images=3):
    """Per image: a 40x40 'square' (medium) at x=10+i and a 20x50 'bar' at x=70."""
    images, anns = [], []
    for i in range(num_images):
        images.append({"id": i + 1, "file_name": f"im{i}.png", "height": H, "width": W})
        for cat, (x, y, w, h) in ((1, (10 + i, 20, 40, 40)), (2, (70, 30, 20, 50))):
            m = square_mask(x, y, w, h)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cat, "bbox": [x, y, w, h],
                         "area": float(w * h), "iscrowd": 0, "segmentation": encode_rle(m)})
    return {"images": images, "annotations": anns, "categories": [dict(c) for c in CATEGORIES]}


def predictions(gt, dx=0, score=0.9, category_map=None):
    """Each GT object shifted right by ``dx`` pixels (mask and box), as COCO results."""
    out = []
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        m = square_mask(int(x + dx), int(y), int(w), int(h))
        cat = (category_map or {}).get(a["category_id"], a["category_id"])
        out.append({"image_id": a["image_id"], "category_id": cat, "bbox": [x + dx, y, w, h], "score": score,
                    "segmentation": encode_rle(m)})
    return out


def make_records(tmp_path, n=3):
    """TFRecords of colour shapes through tfod-seg's converter (the real writer)."""
    import io

    from PIL import Image

    from tests.inference.fake_export import shapes_image
    from tfod_seg.data.types import Bitmap, Instance, Sample
    from tfod_seg.records.convert import convert_dataset

    names = {1: "red", 2: "green", 3: "blue"}
    samples = []
    for i in range(n):
        img, masks = shapes_image(shapes=(("rect", 1, (8 + i, 6, 30, 24)), ("circle", 2, (44, 30, 10 + i))))
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        inst = []
        for cls, m in masks.items():
            ys, xs = np.nonzero(m)
            inst.append(Instance(names[cls], (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), Bitmap(m)))
        samples.append(Sample(f"s{i}", f"s{i}.png", 48, 64, tuple(inst), image_bytes=buf.getvalue()))
    from tfod_seg.labelmap import LabelMap

    convert_dataset(samples, tmp_path / "records", label_map=LabelMap.from_names(["red", "green", "blue"]),
                    num_shards=1, workers=1)
    return str(tmp_path / "records" / "train-*.tfrecord")


def random_dataset(num_images=23, seed=0, num_classes=3):
    """A COCO ground truth and results with the cases COCOeval treats specially: several
    classes, crowd regions, objects in every area range (small, medium, large), images with no
    ground truth and no detection, with ground truth only, with detections only, one image
    with more detections than ``maxDets`` (100), tied scores across images, and detections of
    a category the ground truth does not have (id 99). Masks are rectangles with a notch, so
    mask and box IoU differ."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    h, w = 120, 160
    images, anns, results = [], [], []

    def rect(x, y, bw, bh):
        m = np.zeros((h, w), np.uint8)
        m[y:y + bh, x:x + bw] = 1
        m[y:y + bh // 3, x:x + bw // 3] = 0  # the notch
        rle = mask_utils.encode(np.asfortranarray(m))
        return {"size": [h, w], "counts": rle["counts"].decode("ascii")}, float(m.sum())

    def box(scale):
        bw, bh = (int(v) for v in rng.integers(max(3, scale // 2), scale + 1, 2))
        bw, bh = min(bw, w - 1), min(bh, h - 1)
        return int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh)), bw, bh

    for i in range(1, num_images + 1):
        images.append({"id": i, "file_name": f"im{i}.png", "height": h, "width": w})
        kind = i % 7  # 0: empty, 1: ground truth only, 2: detections only, else both
        n_gt = 0 if kind in (0, 2) else int(rng.integers(1, 6))
        for _ in range(n_gt):
            x, y, bw, bh = box(int(rng.choice([20, 60, 140])))  # small, medium, large
            seg, area = rect(x, y, bw, bh)
            crowd = int(rng.random() < 0.15)
            cat = int(rng.integers(1, num_classes + 1))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat, "bbox": [x, y, bw, bh],
                         "area": area, "iscrowd": crowd, "segmentation": seg})
            if kind != 1 and rng.random() < 0.8:  # a detection near it, sometimes of another class
                dx, dy = (int(v) for v in rng.integers(-4, 5, 2))
                x2, y2 = min(max(x + dx, 0), w - bw), min(max(y + dy, 0), h - bh)
                seg2, _ = rect(x2, y2, bw, bh)
                det_cat = cat if rng.random() < 0.85 else int(rng.integers(1, num_classes + 1))
                results.append({"image_id": i, "category_id": det_cat, "bbox": [x2, y2, bw, bh],
                                "score": round(float(rng.random()), 1), "segmentation": seg2})
        n_fp = 0 if kind in (0, 1) else int(rng.integers(0, 4)) + (130 if i == 3 else 0)
        for _ in range(n_fp):
            x, y, bw, bh = box(int(rng.choice([20, 60])))
            seg, _ = rect(x, y, bw, bh)
            cat = 99 if rng.random() < 0.05 else (1 if i == 3 else int(rng.integers(1, num_classes + 1)))
            results.append({"image_id": i, "category_id": cat, "bbox": [x, y, bw, bh],
                            "score": round(float(rng.random()), 1), "segmentation": seg})
    cats = [{"id": c, "name": f"class{c}"} for c in range(1, num_classes + 1)]
    return {"images": images, "annotations": anns, "categories": cats}, results
