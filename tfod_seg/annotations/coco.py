"""COCO instances JSON → `Sample`s.

Coordinates: COCO ``bbox`` is ``[x, y, width, height]`` in absolute pixels (top-left corner);
it becomes ``Instance.box = (x, y, x + width, y + height)``, clipped to the image. Polygon
``segmentation`` is a list of flat ``[x0, y0, x1, y1, ...]`` parts (several parts = one
instance); ``{"counts", "size"}`` is RLE, compressed (string) or uncompressed (list, as
``iscrowd`` annotations use).

Category ids are remapped to contiguous 1..N in increasing COCO id order (TFOD2 reserves 0
for the background; COCO's own ids have gaps); the names, in that order, become the label
map. A category with id 0 is remapped like any other and noted in the report.

Dataset-level problems (malformed JSON, missing ``images``/``categories``, duplicate image or
category ids, duplicate category names) raise `AnnotationError` naming the file. Per-image
and per-annotation problems are skipped and recorded on the stream with their reason: an
annotation whose ``image_id`` has no image, an unknown ``category_id``, a zero-size box, a
polygon part with fewer than 3 points, an RLE whose size differs from the image, a missing
image file. Images without annotations are kept as negatives unless ``drop_empty``.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

from tfod_seg.data.stream import SampleStream
from tfod_seg.data.types import RLE, Instance, Polygons, Sample
from tfod_seg.errors import AnnotationError


def _load_json(path: str):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8-sig"))
    except FileNotFoundError:
        raise AnnotationError(path, "COCO annotation file not found") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(path, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise AnnotationError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None


def _int_id(value, where: str, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnnotationError(path, f"{where}: id must be an integer, got {value!r}")
    return value


def read_coco(json_path, image_dir=None, *, drop_empty: bool = False) -> SampleStream:
    """Stream `Sample`s from a COCO instances file; images are ``image_dir/file_name``
    (default: the JSON file's folder). Returns a `SampleStream` whose ``label_names`` are the
    categories in contiguous-id order."""
    json_path = os.fspath(json_path)
    image_dir = os.fspath(image_dir) if image_dir is not None else os.path.dirname(os.path.abspath(json_path))
    if not os.path.isdir(image_dir):
        raise AnnotationError(image_dir, "image directory not found (pass --image-dir)")
    doc = _load_json(json_path)
    name = os.path.basename(json_path)
    if not isinstance(doc, dict):
        raise AnnotationError(json_path, "expected a JSON object with 'images', 'annotations', 'categories'")
    for key in ("images", "categories"):
        if not isinstance(doc.get(key), list):
            raise AnnotationError(json_path, f"missing or invalid '{key}' list (not a COCO instances file?)")
    annotations = doc.get("annotations", [])
    if not isinstance(annotations, list):
        raise AnnotationError(json_path, "'annotations' must be a list")

    cats: Dict[int, str] = {}
    names_seen: Dict[str, int] = {}
    for i, cat in enumerate(doc["categories"]):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            raise AnnotationError(json_path, f"categories[{i}]: needs an integer 'id' and a string 'name', got {cat!r}")
        cid = _int_id(cat["id"], f"categories[{i}]", json_path)
        if cid in cats:
            raise AnnotationError(json_path, f"categories[{i}]: duplicate category id {cid} "
                                             f"('{cats[cid]}' and '{cat['name']}')")
        if cat["name"] in names_seen:
            raise AnnotationError(json_path, f"categories[{i}]: duplicate category name '{cat['name']}' "
                                             f"(ids {names_seen[cat['name']]} and {cid})")
        cats[cid] = cat["name"]
        names_seen[cat["name"]] = cid
    if not cats:
        raise AnnotationError(json_path, "'categories' is empty; at least one category is needed")
    label_names = [cats[c] for c in sorted(cats)]

    images: Dict[int, dict] = {}
    order: List[int] = []
    for i, img in enumerate(doc["images"]):
        if not isinstance(img, dict) or "id" not in img:
            raise AnnotationError(json_path, f"images[{i}]: needs an 'id', got {img!r}")
        iid = img["id"]
        if iid in images:
            raise AnnotationError(json_path, f"images[{i}]: duplicate image id {iid!r} "
                                             f"('{images[iid].get('file_name')}' and '{img.get('file_name')}')")
        images[iid] = img
        order.append(iid)

    stream = SampleStream(total=len(order), label_names=label_names, source=json_path)
    if 0 in cats:
        stream.note(name, "category_id_0", f"category id 0 ('{cats[0]}') remapped to contiguous id "
                    f"{sorted(cats).index(0) + 1}; TFOD2 reserves 0 for the background")
    by_image: Dict[object, List[dict]] = {}
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            stream.skip(name, "bad_annotation", f"annotations[{i}]: not an object", "instance")
            continue
        iid = ann.get("image_id")
        if iid not in images:
            stream.skip(name, "missing_image_id", f"annotation id {ann.get('id', i)!r} points to image id {iid!r}, "
                        "which is not in 'images'", "instance")
            continue
        by_image.setdefault(iid, []).append(ann)

    def gen(s: SampleStream):
        for index, iid in enumerate(order):
            sample = _image_sample(s, name, image_dir, images[iid], by_image.get(iid, []), cats)
            if sample is None:
                continue
            if drop_empty and not sample.instances:
                s.skip(name, "no_instances", f"image id {iid!r} ('{sample.filename}') has no annotations "
                       "(dropped by --drop-empty)")
                continue
            yield sample

    return stream.attach(gen)


def _image_sample(stream: SampleStream, name: str, image_dir: str, img: dict, anns: List[dict],
                  cats: Dict[int, str]) -> Optional[Sample]:
    iid = img["id"]
    file_name = img.get("file_name")
    where = f"image id {iid!r}" + (f" ('{file_name}')" if file_name else "")
    h, w = img.get("height"), img.get("width")
    if not isinstance(file_name, str) or not file_name:
        stream.skip(name, "bad_image_entry", f"{where}: missing 'file_name'")
        return None
    if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
        stream.skip(name, "bad_image_entry", f"{where}: 'height'/'width' must be positive integers, got {h!r}/{w!r}")
        return None
    path = os.path.join(image_dir, file_name)
    if not os.path.isfile(path):
        stream.skip(name, "missing_image", f"{where}: image file not found: {path}")
        return None
    instances = []
    for ann in anns:
        inst = _instance(stream, name, ann, h, w, cats, where)
        if inst is not None:
            instances.append(inst)
    return Sample(source_id=str(iid), filename=file_name, height=h, width=w, instances=tuple(instances),
                  image_path=path, source=f"{name} ({where})")


def _instance(stream, name, ann, h, w, cats, img_where) -> Optional[Instance]:
    aid = ann.get("id")
    where = f"{img_where} annotation id {aid!r}"

    def skip(kind, msg, label=None):
        stream.skip(name, kind, f"{where}: {msg}", "instance", label=label)

    cid = ann.get("category_id")
    if cid not in cats:
        skip("unknown_category", f"category_id {cid!r} is not in 'categories' (ids: {sorted(cats)[:20]})")
        return None
    label = cats[cid]
    bbox = ann.get("bbox")
    try:
        x, y, bw, bh = (float(v) for v in bbox)
    except (TypeError, ValueError):
        skip("bad_annotation", f"bbox must be [x, y, width, height], got {bbox!r}", label)
        return None
    if not (bw > 0 and bh > 0):
        skip("zero_area", f"bbox {bbox!r} has zero or negative width/height", label)
        return None
    xmin, ymin, xmax, ymax = max(0.0, x), max(0.0, y), min(float(w), x + bw), min(float(h), y + bh)
    if xmax <= xmin or ymax <= ymin:
        skip("outside_image", f"bbox {bbox!r} lies outside the {w}x{h} image", label)
        return None
    seg = ann.get("segmentation")
    mask = None
    if isinstance(seg, list) and seg:
        parts = []
        for k, part in enumerate(seg):
            if not isinstance(part, list) or len(part) < 6 or len(part) % 2:
                n = len(part) // 2 if isinstance(part, list) else 0
                skip("too_few_points", f"polygon part {k} has {n} points (need at least 3 (x, y) pairs)", label)
                continue
            try:
                parts.append(tuple(float(v) for v in part))
            except (TypeError, ValueError):
                skip("bad_annotation", f"polygon part {k} has non-numeric coordinates", label)
        if not parts:
            return None
        mask = Polygons(tuple(parts))
    elif isinstance(seg, dict):
        counts, size = seg.get("counts"), seg.get("size")
        if not (isinstance(size, list) and len(size) == 2) or counts is None:
            skip("bad_rle", f"RLE needs 'counts' and 'size' [h, w], got keys {sorted(seg)}", label)
            return None
        if tuple(size) != (h, w):
            skip("rle_size_mismatch", f"RLE size [h, w]={list(size)} differs from the image size [{h}, {w}]", label)
            return None
        mask = RLE(tuple(int(c) for c in counts) if isinstance(counts, list) else counts, (h, w))
    iscrowd = bool(ann.get("iscrowd", 0))
    area = ann.get("area")
    area = float(area) if isinstance(area, (int, float)) and not isinstance(area, bool) else None
    return Instance(label=label, box=(xmin, ymin, xmax, ymax), mask=mask, iscrowd=iscrowd, area=area)
