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
