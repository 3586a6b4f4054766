"""Ground truth as COCO, from TFRecords.

COCO conventions: ``bbox`` is ``[x, y, w, h]`` absolute pixels (converted from the records'
normalised ``[ymin, xmin, ymax, xmax]``), ``segmentation`` is an RLE with str ``counts``,
image ids are ``1..N`` in record order (files sorted, then position in file), annotation ids
``1..M``. The same ids are used by `score_model` for the predictions, so ``gt.json`` and
``results.json`` written to the output directory can be scored again with `score_files`.

Two ways to read it: `records_to_coco` / `CocoBuilder` build the whole dataset dict;
`scan_records` (image entries and classes, masks left encoded) with `coco_annotations` (one
record's annotations) let `score_model` stream it, one record at a time.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Optional, Set

from tfod_seg import io
from tfod_seg.inference.formats import encode_rle
from tfod_seg.records.reader import expand_patterns, iter_raw_records, iter_records, parse_example


def coco_image(rec, image_id: int) -> Dict:
    """The COCO ``images`` entry of a `RecordExample` (``record`` names its file and position)."""
    return {"id": image_id, "file_name": rec.filename or rec.source_id or f"{image_id}",
            "height": int(rec.height), "width": int(rec.width),
            "source_id": rec.source_id, "record": f"{io.basename(rec.path)}#{rec.index}"}


def class_texts_of(rec, texts: Dict[int, str]) -> None:
    """Add the record's first text per class id to ``texts`` (kept when already there)."""
    for k, cls in enumerate(rec.classes):
        if k < len(rec.class_texts) and rec.class_texts[k]:
            texts.setdefault(int(cls), rec.class_texts[k])


def coco_annotations(rec, image_id: int, first_id: int) -> List[Dict]:
    """The COCO annotations of a `RecordExample` (masks decoded), ids from ``first_id``. A
    record whose masks do not match its instances gives box-only annotations."""
    h, w = int(rec.height), int(rec.width)
    n = len(rec.classes)
    masks = rec.masks if rec.masks is not None and len(rec.masks) == n and n else None
    out = []
    for k in range(n):
        ymin, xmin, ymax, xmax = (float(v) for v in rec.boxes[k])
        bbox = [xmin * w, ymin * h, (xmax - xmin) * w, (ymax - ymin) * h]
        ann = {"id": first_id + k, "image_id": image_id, "category_id": int(rec.classes[k]),
               "bbox": [round(v, 3) for v in bbox], "iscrowd": int(bool(rec.is_crowd[k])) if len(rec.is_crowd) > k else 0}
        if masks is not None:
            ann["segmentation"] = encode_rle(masks[k])
            mask_area = float(masks[k].sum())
        else:
            mask_area = bbox[2] * bbox[3]
        ann["area"] = float(rec.area[k]) if len(rec.area) > k and float(rec.area[k]) > 0 else mask_area
        out.append(ann)
    return out


def coco_categories(class_ids: Iterable[int], class_texts: Dict[int, str], label_map=None) -> List[Dict]:
    """Every class id of the annotations, of the label map and of the class texts, named by the
    label map, else the records' class text, else ``class_<id>``; sorted by id."""
    ids = set(class_ids)
    names: Dict[int, str] = {}
    if label_map is not None:
        names.update({it.id: it.name for it in label_map})
    for cid, text in class_texts.items():
        names.setdefault(cid, text)
    ids |= set(names)
    return [{"id": i, "name": names.get(i, f"class_{i}"), "supercategory": "none"} for i in sorted(ids)]


GT_INFO = {"description": "ground truth from TFRecords (tfod-seg)"}


class CocoBuilder:
    """Accumulates images and annotations from `RecordExample`s into a COCO dict."""

    def __init__(self):
        self.images: List[Dict] = []
        self.annotations: List[Dict] = []
        self.class_texts: Dict[int, str] = {}

    def add(self, rec) -> int:
        image_id = len(self.images) + 1
        self.images.append(coco_image(rec, image_id))
        class_texts_of(rec, self.class_texts)
        self.annotations.extend(coco_annotations(rec, image_id, len(self.annotations) + 1))
        return image_id

    def categories(self, label_map=None) -> List[Dict]:
        return coco_categories({a["category_id"] for a in self.annotations}, self.class_texts, label_map)

    def to_dict(self, label_map=None) -> Dict:
        return {"info": dict(GT_INFO), "images": self.images, "annotations": self.annotations,
                "categories": self.categories(label_map)}


@dataclasses.dataclass
class RecordIndex:
    """What `scan_records` learns in one pass: the COCO image entries (ids 1..N in record
    order), the class ids of the instances and their texts."""

    images: List[Dict]
    class_ids: Set[int]
    class_texts: Dict[int, str]
    num_annotations: int

    def categories(self, label_map=None) -> List[Dict]:
        return coco_categories(self.class_ids, self.class_texts, label_map)


def scan_records(files) -> RecordIndex:
    """Image entries and classes of every record of ``files`` (paths or globs), without
    decoding images or masks."""
    images: List[Dict] = []
    class_ids: Set[int] = set()
    texts: Dict[int, str] = {}
    count = 0
    for path, idx, raw in iter_raw_records(files):
        rec = parse_example(raw, path, idx, decode_masks=False)
        images.append(coco_image(rec, len(images) + 1))
        class_ids.update(int(c) for c in rec.classes)
        class_texts_of(rec, texts)
        count += len(rec.classes)
    return RecordIndex(images=images, class_ids=class_ids, class_texts=texts, num_annotations=count)


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


__all__ = ["CocoBuilder", "RecordIndex", "coco_annotations", "coco_categories", "coco_image", "records_to_coco",
           "scan_records", "label_map_beside_records", "GT_INFO"]
