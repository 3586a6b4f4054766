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

Every value is checked before geometry reaches pycocotools: ids must be integers (image ids
may also be strings), ``bbox`` and polygon coordinates finite numbers, ``iscrowd`` 0 or 1,
RLE ``counts`` a string or a list of non-negative integers. A ``file_name`` that is absolute
or climbs out of the image folder (``../``) is refused (a counted skip) unless
``allow_outside_root``.
"""

from __future__ import annotations

import math
import os
from typing import Dict, List, Optional, Tuple

from tfod_seg import io
from tfod_seg.annotations.base import FormatReader, ReaderOptions, read_json_file
from tfod_seg.data.stream import SampleStream
from tfod_seg.data.types import RLE, Instance, Polygons, Sample
from tfod_seg.errors import AnnotationError


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_id(value, where: str, path: str) -> int:
    if not _is_int(value):
        raise AnnotationError(path, f"{where}: id must be an integer, got {value!r}"[:300])
    return value


def _image_id(value, where: str, path: str):
    if not (_is_int(value) or isinstance(value, str)):
        raise AnnotationError(path, f"{where}: image id must be an integer or a string, got {value!r}"[:300])
    return value


def _finite_numbers(values) -> Optional[Tuple[float, ...]]:
    """``values`` as floats when every one is a finite number (not a bool), else None."""
    if not isinstance(values, (list, tuple)):
        return None
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        try:
            f = float(v)
        except OverflowError:
            return None
        if not math.isfinite(f):
            return None
        out.append(f)
    return tuple(out)


def read_coco(json_path, image_dir=None, *, drop_empty: bool = False, allow_outside_root: bool = False) -> SampleStream:
    """Stream `Sample`s from a COCO instances file; images are ``image_dir/file_name``
    (default: the JSON file's folder). Returns a `SampleStream` whose ``label_names`` are the
    categories in contiguous-id order."""
    json_path = io.check_path(json_path, "COCO annotation file")
    image_dir = io.abspath(image_dir) if image_dir is not None else io.dirname(io.abspath(json_path))
    if not io.isdir(image_dir):
        raise AnnotationError(image_dir, "image directory not found (pass --image-dir)")
    doc = read_json_file(json_path, "COCO annotation file")
    if not isinstance(doc, dict):
        raise AnnotationError(json_path, "expected a JSON object with 'images', 'annotations', 'categories'")
    for key in ("images", "categories"):
        if not isinstance(doc.get(key), list):
            raise AnnotationError(json_path, f"missing or invalid '{key}' list (not a COCO instances file?)")
    annotations = doc.get("annotations", [])
    if not isinstance(annotations, list):
        raise AnnotationError(json_path, "'annotations' must be a list")
    cats = _categories(doc["categories"], json_path)
    images, order = _images(doc["images"], json_path)
    name = io.basename(json_path)
    stream = SampleStream(total=len(order), label_names=[cats[c] for c in sorted(cats)], source=json_path)
    if 0 in cats:
        stream.note(name, "category_id_0", f"category id 0 ('{cats[0]}') remapped to contiguous id "
                    f"{sorted(cats).index(0) + 1}; TFOD2 reserves 0 for the background")
    by_image = _annotations_by_image(stream, name, annotations, images)
    ctx = _Context(stream, name, image_dir, cats, allow_outside_root)

    def gen(s: SampleStream):
        for iid in order:
            sample = _image_sample(ctx, images[iid], by_image.get(iid, []))
            if sample is None:
                continue
            if drop_empty and not sample.instances:
                s.skip(name, "no_instances", f"image id {iid!r} ('{sample.filename}') has no annotations "
                       "(dropped by --drop-empty)")
                continue
            yield sample

    return stream.attach(gen)


def _open(input_path: str, options: ReaderOptions) -> SampleStream:
    return read_coco(input_path, options.image_dir, drop_empty=options.drop_empty,
                     allow_outside_root=options.allow_outside_root)


READER = FormatReader("coco", "COCO instances JSON file (images under --image-dir, default: its folder)", _open)


def _categories(categories: list, json_path: str) -> Dict[int, str]:
    cats: Dict[int, str] = {}
    names_seen: Dict[str, int] = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            raise AnnotationError(json_path, f"categories[{i}]: needs an integer 'id' and a string 'name', "
                                             f"got {cat!r}"[:400])
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
    return cats


def _images(entries: list, json_path: str) -> Tuple[Dict[object, dict], List[object]]:
    images: Dict[object, dict] = {}
    order: List[object] = []
    for i, img in enumerate(entries):
        if not isinstance(img, dict) or "id" not in img:
            raise AnnotationError(json_path, f"images[{i}]: needs an 'id', got {img!r}"[:400])
        iid = _image_id(img["id"], f"images[{i}]", json_path)
        if iid in images:
            raise AnnotationError(json_path, f"images[{i}]: duplicate image id {iid!r} "
                                             f"('{images[iid].get('file_name')}' and '{img.get('file_name')}')")
        images[iid] = img
        order.append(iid)
    return images, order


def _annotations_by_image(stream, name, annotations, images) -> Dict[object, List[dict]]:
    by_image: Dict[object, List[dict]] = {}
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            stream.skip(name, "bad_annotation", f"annotations[{i}]: not an object", "instance")
            continue
        iid = ann.get("image_id")
        if not (_is_int(iid) or isinstance(iid, str)):
            stream.skip(name, "bad_annotation", f"annotations[{i}]: image_id must be an integer, got {iid!r}"[:300],
                        "instance")
            continue
        if iid not in images:
            stream.skip(name, "missing_image_id", f"annotation id {ann.get('id', i)!r} points to image id {iid!r}, "
                        "which is not in 'images'"[:300], "instance")
            continue
        by_image.setdefault(iid, []).append(ann)
    return by_image


class _Context:
    def __init__(self, stream, name, image_dir, cats, allow_outside_root):
        self.stream, self.name, self.image_dir = stream, name, image_dir
        self.cats, self.allow_outside_root = cats, allow_outside_root


def _image_path(ctx: _Context, file_name: str, where: str) -> Optional[str]:
    path = io.join(ctx.image_dir, file_name) if not os.path.isabs(file_name) else file_name
    if not io.is_url(path):
        path = os.path.normpath(path)
    if not ctx.allow_outside_root and not io.is_inside(path, ctx.image_dir):
        ctx.stream.skip(ctx.name, "path_outside_root",
                        f"{where}: file_name escapes the image folder {ctx.image_dir} "
                        "(refused; pass --allow-outside-root to accept it)")
        return None
    if not io.isfile(path):
        ctx.stream.skip(ctx.name, "missing_image", f"{where}: image file not found: {path}")
        return None
    return path


def _image_sample(ctx: _Context, img: dict, anns: List[dict]) -> Optional[Sample]:
    iid = img["id"]
    file_name = img.get("file_name")
    where = f"image id {iid!r}" + (f" ('{file_name}')" if isinstance(file_name, str) and file_name else "")
    h, w = img.get("height"), img.get("width")
    if not isinstance(file_name, str) or not file_name:
        ctx.stream.skip(ctx.name, "bad_image_entry", f"{where}: 'file_name' must be a non-empty string")
        return None
    if not (_is_int(h) and _is_int(w) and h > 0 and w > 0):
        ctx.stream.skip(ctx.name, "bad_image_entry",
                        f"{where}: 'height'/'width' must be positive integers, got {h!r}/{w!r}"[:300])
        return None
    path = _image_path(ctx, file_name, where)
    if path is None:
        return None
    instances = []
    for ann in anns:
        inst = _instance(ctx.stream, ctx.name, ann, h, w, ctx.cats, where)
        if inst is not None:
            instances.append(inst)
    return Sample(source_id=str(iid), filename=file_name, height=h, width=w, instances=tuple(instances),
                  image_path=path, source=f"{ctx.name} ({where})")


def _polygons(seg: list, skip) -> Optional[Polygons]:
    parts = []
    for k, part in enumerate(seg):
        if not isinstance(part, list) or len(part) < 6 or len(part) % 2:
            n = len(part) // 2 if isinstance(part, list) else 0
            skip("too_few_points", f"polygon part {k} has {n} points (need at least 3 (x, y) pairs)")
            continue
        coords = _finite_numbers(part)
        if coords is None:
            skip("bad_annotation", f"polygon part {k} has coordinates that are not finite numbers")
            continue
        parts.append(coords)
    return Polygons(tuple(parts)) if parts else None


def _rle(seg: dict, h: int, w: int, skip) -> Optional[RLE]:
    counts, size = seg.get("counts"), seg.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)) or counts is None:
        skip("bad_rle", f"RLE needs 'counts' and 'size' [h, w] (integers), got {seg!r}"[:300])
        return None
    if tuple(size) != (h, w):
        skip("rle_size_mismatch", f"RLE size [h, w]={list(size)} differs from the image size [{h}, {w}]")
        return None
    if isinstance(counts, list):
        if not all(_is_int(c) and c >= 0 for c in counts):
            skip("bad_rle", "uncompressed RLE 'counts' must be non-negative integers")
            return None
        return RLE(tuple(counts), (h, w))
    if not isinstance(counts, str):
        skip("bad_rle", f"RLE 'counts' must be a string or a list of integers, got {type(counts).__name__}")
        return None
    return RLE(counts, (h, w))


def _iscrowd(value) -> Optional[bool]:
    if value in (0, 1) and isinstance(value, (int, bool)):
        return bool(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return value.strip() == "1"
    return None


def _instance(stream, name, ann, h, w, cats, img_where) -> Optional[Instance]:
    aid = ann.get("id")
    where = f"{img_where} annotation id {aid!r}"[:200]

    def skip(kind, msg, label=None):
        stream.skip(name, kind, f"{where}: {msg}", "instance", label=label)

    cid = ann.get("category_id")
    if not _is_int(cid) or cid not in cats:
        skip("unknown_category", f"category_id {cid!r} is not in 'categories' (ids: {sorted(cats)[:20]})"[:300])
        return None
    label = cats[cid]
    bbox = _finite_numbers(ann.get("bbox"))
    if bbox is None or len(bbox) != 4:
        skip("bad_annotation", f"bbox must be [x, y, width, height] finite numbers, got {ann.get('bbox')!r}"[:300], label)
        return None
    x, y, bw, bh = bbox
    if not (bw > 0 and bh > 0):
        skip("zero_area", f"bbox {ann.get('bbox')!r} has zero or negative width/height", label)
        return None
    xmin, ymin, xmax, ymax = max(0.0, x), max(0.0, y), min(float(w), x + bw), min(float(h), y + bh)
    if xmax <= xmin or ymax <= ymin:
        skip("outside_image", f"bbox {ann.get('bbox')!r} lies outside the {w}x{h} image", label)
        return None
    iscrowd = _iscrowd(ann.get("iscrowd", 0))
    if iscrowd is None:
        skip("bad_annotation", f"iscrowd must be 0 or 1, got {ann.get('iscrowd')!r}"[:300], label)
        return None
    seg = ann.get("segmentation")
    mask = None
    if isinstance(seg, list) and seg:
        mask = _polygons(seg, lambda kind, msg: skip(kind, msg, label))
        if mask is None:
            return None
    elif isinstance(seg, dict):
        mask = _rle(seg, h, w, lambda kind, msg: skip(kind, msg, label))
        if mask is None:
            return None
    area = _finite_numbers([ann.get("area")])
    return Instance(label=label, box=(xmin, ymin, xmax, ymax), mask=mask, iscrowd=iscrowd,
                    area=area[0] if area else None)
