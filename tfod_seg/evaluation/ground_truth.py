"""Ground truth as a COCO dataset dict, from TFRecords.

COCO conventions: ``bbox`` is ``[x, y, w, h]`` absolute pixels (converted from the records'
normalised ``[ymin, xmin, ymax, xmax]``), ``segmentation`` is an RLE with str ``counts``,
image ids are ``1..N`` in record order (files sorted, then position in file), annotation ids
``1..M``. The same ids are used by `score_model` for the predictions, so ``gt.json`` and
``results.json`` written to the output directory can be scored again with `score_files`.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from tfod_seg import io
from tfod_seg.inference.formats import encode_rle
from tfod_seg.records.reader import expand_patterns, iter_records


class CocoBuilder:
    """Accumulates images and annotations from `RecordExample`s into a COCO dict."""

    def __init__(self):
        self.images: List[Dict] = []
        self.annotations: List[Dict] = []
        self.class_texts: Dict[int, str] = {}
        self.has_masks = True

    def add(self, rec) -> int:
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": rec.filename or rec.source_id or f"{image_id}",
                            "height": int(rec.height), "width": int(rec.width),
                            "source_id": rec.source_id, "record": f"{io.basename(rec.path)}#{rec.index}"})
        h, w = int(rec.height), int(rec.width)
        n = len(rec.classes)
        masks = rec.masks if rec.masks is not None and len(rec.masks) == n and n else None
        if n and masks is None:
            self.has_masks = False
        for k in range(n):
            ymin, xmin, ymax, xmax = (float(v) for v in rec.boxes[k])
            bbox = [xmin * w, ymin * h, (xmax - xmin) * w, (ymax - ymin) * h]
            cls = int(rec.classes[k])
            if k < len(rec.class_texts) and rec.class_texts[k]:
                self.class_texts.setdefault(cls, rec.class_texts[k])
            ann = {"id": len(self.annotations) + 1, "image_id": image_id, "category_id": cls,
                   "bbox": [round(v, 3) for v in bbox], "iscrowd": int(bool(rec.is_crowd[k])) if len(rec.is_crowd) > k else 0}
            if masks is not None:
                ann["segmentation"] = encode_rle(masks[k])
                mask_area = float(masks[k].sum())
            else:
                mask_area = bbox[2] * bbox[3]
            area = float(rec.area[k]) if len(rec.area) > k and float(rec.area[k]) > 0 else mask_area
            ann["area"] = area
            self.annotations.append(ann)
        return image_id

    def categories(self, label_map=None) -> List[Dict]:
        ids = {a["category_id"] for a in self.annotations}
        names: Dict[int, str] = {}
        if label_map is not None:
            names.update({it.id: it.name for it in label_map})
        for cid, text in self.class_texts.items():
            names.setdefault(cid, text)
        ids |= set(names)
        return [{"id": i, "name": names.get(i, f"class_{i}"), "supercategory": "none"} for i in sorted(ids)]

    def to_dict(self, label_map=None) -> Dict:
        return {"info": {"description": "ground truth from TFRecords (tfod-seg)"}, "images": self.images,
                "annotations": self.annotations, "categories": self.categories(label_map)}


def records_to_coco(records, label_map=None) -> Dict:
    """COCO dataset dict from every record matching ``records`` (glob(s) or paths)."""
    builder = CocoBuilder()
    for rec in iter_records(records):
        builder.add(rec)
    return builder.to_dict(label_map)


def label_map_beside_records(records) -> Optional[str]:
    """``label_map.pbtxt`` in the directory of the first record file (where `convert` puts it)."""
    files = expand_patterns(records)
    path = io.join(io.dirname(files[0]), "label_map.pbtxt")
    return path if io.isfile(path) else None


__all__ = ["CocoBuilder", "records_to_coco", "label_map_beside_records"]
