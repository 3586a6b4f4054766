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

Memory does not grow with the dataset: the file is read in a stream with ijson (three passes:
the top level, then one ``images`` and one ``annotations`` element at a time, see
`_stream_into`; a URL is read three times) into a temporary on-disk SQLite index (`_Index`:
images in file order, annotations by image id), and each image is built from its own rows when
the stream reaches it. A COCO train2017 file (450 MB) or an
LVIS file (1 GB) costs the decoder's buffer and SQLite's page cache, not the parsed document,
plus a temporary file of about the JSON's size in the temporary folder (``TMPDIR``).
A file the stream cannot read (malformed, not UTF-8, not an object at the top) is parsed whole
once with the standard library, to report its error exactly as before; so is a file with
``NaN``/``Infinity`` values (not JSON, but Python's parser accepts them), whose memory then
grows with its size as before.
"""

from __future__ import annotations

import codecs
import math
import os
import pickle
import sqlite3
from typing import Dict, Iterator, List, Optional, Tuple

import ijson

from tfod_seg import io
from tfod_seg.annotations.base import FormatReader, ReaderOptions, read_json_file
from tfod_seg.data.stream import SampleStream
from tfod_seg.data.types import RLE, Instance, Polygons, Sample
from tfod_seg.errors import AnnotationError, UserError


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_id(value, where: str, path: str) -> int:
    if not _is_int(value):
        raise AnnotationError(path, f"{where}: id must be an integer, got {value!r}"[:300])
    return value


_NUMBER_TYPES = frozenset((int, float))  # what JSON numbers decode to (a bool's type is bool)


def _finite_numbers(values) -> Optional[Tuple[float, ...]]:
    """``values`` as floats when every one is a finite number (not a bool), else None."""
    if not isinstance(values, (list, tuple)) or not _NUMBER_TYPES.issuperset(map(type, values)):
        return None
    try:
        out = tuple(map(float, values))
    except OverflowError:  # an integer too large for a float
        return None
    return out if all(map(math.isfinite, out)) else None


def read_coco(json_path, image_dir=None, *, drop_empty: bool = False, allow_outside_root: bool = False) -> SampleStream:
    """Stream `Sample`s from a COCO instances file; images are ``image_dir/file_name``
    (default: the JSON file's folder). Returns a `SampleStream` whose ``label_names`` are the
    categories in contiguous-id order."""
    json_path = io.check_path(json_path, "COCO annotation file")
    image_dir = io.abspath(image_dir) if image_dir is not None else io.dirname(io.abspath(json_path))
    if not io.isdir(image_dir):
        raise AnnotationError(image_dir, "image directory not found (pass --image-dir)")
    index = _load_index(json_path)
    try:
        cats = _check(index, json_path)
    except BaseException:
        index.close()
        raise
    name = io.basename(json_path)
    stream = SampleStream(total=index.num_images, label_names=[cats[c] for c in sorted(cats)], source=json_path)
    if 0 in cats:
        stream.note(name, "category_id_0", f"category id 0 ('{cats[0]}') remapped to contiguous id "
                    f"{sorted(cats).index(0) + 1}; TFOD2 reserves 0 for the background")
    _annotation_skips(stream, name, index)
    ctx = _Context(stream, name, image_dir, cats, allow_outside_root)

    def gen(s: SampleStream):
        with index:  # the temporary index is deleted when the stream ends or is dropped
            for img, anns in index.images():
                iid = img["id"]
                sample = _image_sample(ctx, img, anns)
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


def _check(index: "_Index", json_path: str) -> Dict[int, str]:
    """Dataset-level errors, in the order the reader has always reported them; the categories."""
    for key in ("images", "categories"):
        if index.kinds.get(key) is not list:
            raise AnnotationError(json_path, f"missing or invalid '{key}' list (not a COCO instances file?)")
    if index.kinds.get("annotations", list) is not list:
        raise AnnotationError(json_path, "'annotations' must be a list")
    cats = _categories(index.categories, json_path)
    if index.image_error is not None:
        raise AnnotationError(json_path, index.image_error)
    return cats


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


# ---------------------------------------------------------------------------------------
# Streaming the file into an on-disk index
# ---------------------------------------------------------------------------------------
STREAMED_ARRAYS = ("images", "annotations")
PICKLE_PROTOCOL = 5
# ijson's events that begin a value (a scalar is its own beginning and end)
_VALUE_STARTS = frozenset(("start_map", "start_array", "null", "boolean", "integer", "double", "number", "string"))
_EVENT_TYPES = {"start_map": dict, "start_array": list, "null": type(None), "boolean": bool, "string": str}


class _NotStreamable(ValueError):
    """The stream met something it does not read (the whole-file parse then reports it)."""


class _Shape:
    """The top level of a COCO file from one pass over ijson's events: the type of each member's
    (last) value, the categories, and for ``images``/``annotations`` how many elements earlier
    members of the same name had (``json.loads`` keeps only a repeated key's last value)."""

    def __init__(self, f):
        self.kinds: Dict[str, type] = {}
        self.skip = {key: 0 for key in STREAMED_ARRAYS}
        self.categories = None
        self._counts = {key: 0 for key in STREAMED_ARRAYS}
        events = ijson.parse(f, use_float=True)
        if next(events, (None, None, None))[1] != "start_map":
            raise _NotStreamable("the top level is not an object")
        items = {key + ".item": key for key in STREAMED_ARRAYS}
        key = builder = None
        for prefix, event, value in events:
            if prefix in items:
                if event in _VALUE_STARTS:
                    self._counts[items[prefix]] += 1
            elif prefix == "":
                if event == "map_key":
                    key = value
                    if "." in key and key.split(".")[0] in STREAMED_ARRAYS:
                        raise _NotStreamable(f"top-level key {key!r} reads as an element path")
            elif prefix == key:  # the first event of a top-level member's value
                builder = self._member(key, event, value)
                key = None
            elif builder is not None and prefix.startswith("categories"):
                builder.event(event, value)

    def _member(self, key: str, event: str, value):
        """Record a member's value type; returns the builder of the categories' value."""
        self.kinds[key] = _EVENT_TYPES.get(event) or type(value)
        if key in STREAMED_ARRAYS:
            self.skip[key] += self._counts[key]
            self._counts[key] = 0
        if key != "categories":
            return None
        builder = ijson.ObjectBuilder()
        builder.event(event, value)
        self.categories = builder  # its .value once the pass is over
        return builder


def _stream_into(index: "_Index", f) -> None:
    """Fill ``index`` from an open COCO file: the top level with `_Shape`, then the elements of
    ``images`` and ``annotations`` one at a time (ijson builds each in C), one pass each."""
    start = len(codecs.BOM_UTF8) if f.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8 else 0
    f.seek(start)
    shape = _Shape(f)
    index.kinds = shape.kinds
    categories = shape.categories.value if shape.categories is not None else None
    index.categories = categories if isinstance(categories, list) else []
    for key in STREAMED_ARRAYS:
        if shape.kinds.get(key) is not list:
            continue
        f.seek(start)
        for i, value in enumerate(ijson.items(f, key + ".item", use_float=True)):
            if i >= shape.skip[key]:
                index.add(key, value, True)


def _id_key(value) -> Optional[str]:
    """An image id as an index key (ints and strings stay distinct, as in a dict), or None."""
    if _is_int(value):
        return f"i{value}"
    return f"s{value}" if isinstance(value, str) else None


class _Index:
    """The top-level members of a COCO file: categories and the kinds of values in memory;
    images (in file order) and annotations (by image id) in a private temporary SQLite
    database, which SQLite keeps on disk beyond its page cache and deletes on `close()`.

    ``image_error`` is the first problem with ``images`` (missing or bad id, duplicate id), in
    the words `read_coco` has always used; it is raised after the categories are checked.
    """

    def __init__(self):
        self.db = sqlite3.connect("", check_same_thread=False)
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                              "CREATE TABLE img (ord INTEGER PRIMARY KEY, key TEXT UNIQUE, body BLOB);"
                              "CREATE TABLE ann (seq INTEGER PRIMARY KEY, key TEXT, body BLOB);")
        self.kinds: Dict[str, type] = {}
        self.categories: list = []
        self.image_error: Optional[str] = None
        self.num_images = self.num_annotations = 0
        self._rows: List[tuple] = []

    def __enter__(self) -> "_Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def add(self, key: str, value, element: bool) -> None:
        """A top-level member ``key`` with its whole ``value`` (``element`` False; a repeated key
        replaces the earlier value, as in ``json.loads``), or one ``value`` of its array. Rows
        hold pickles: loading one is ten times faster than decoding its JSON again (the database
        is this process's own, deleted after use)."""
        if not element:
            self.kinds[key] = type(value)
            if key in STREAMED_ARRAYS:
                self._restart(key, value)
            elif key == "categories":
                self.categories = value if isinstance(value, list) else []
        elif key == "images":
            self._add_image(value)
        else:
            self._rows.append((self.num_annotations, _id_key(value.get("image_id")) if isinstance(value, dict)
                               else None, pickle.dumps(value, PICKLE_PROTOCOL)))
            self.num_annotations += 1
            if len(self._rows) >= 1000:
                self._flush()

    def _restart(self, key: str, values: list) -> None:
        self._flush()
        table = "img" if key == "images" else "ann"
        self.db.execute(f"DELETE FROM {table}")
        if key == "images":
            self.num_images, self.image_error = 0, None
        else:
            self.num_annotations = 0
        for v in values if isinstance(values, list) else []:  # a document parsed whole
            self.add(key, v, True)

    def _add_image(self, img) -> None:
        i = self.num_images
        self.num_images += 1
        if self.image_error is not None:
            return
        if not isinstance(img, dict) or "id" not in img:
            self.image_error = f"images[{i}]: needs an 'id', got {img!r}"[:400]
            return
        iid = img["id"]
        if not (_is_int(iid) or isinstance(iid, str)):
            self.image_error = f"images[{i}]: image id must be an integer or a string, got {iid!r}"[:300]
            return
        try:
            self.db.execute("INSERT INTO img VALUES (?, ?, ?)", (i, _id_key(iid), pickle.dumps(img, PICKLE_PROTOCOL)))
        except sqlite3.IntegrityError:
            (first,) = self.db.execute("SELECT body FROM img WHERE key = ?", (_id_key(iid),)).fetchone()
            self.image_error = (f"images[{i}]: duplicate image id {iid!r} "
                                f"('{pickle.loads(first).get('file_name')}' and '{img.get('file_name')}')")

    def _flush(self) -> None:
        if self._rows:
            self.db.executemany("INSERT INTO ann VALUES (?, ?, ?)", self._rows)
            self._rows.clear()

    def finish(self) -> None:
        self._flush()
        self.db.execute("CREATE INDEX ann_by_image ON ann (key, seq)")

    def orphans(self) -> Iterator[Tuple[int, object]]:
        """``(index, annotation)`` of each annotation without a usable image id or whose image
        is not in ``images``, in file order."""
        rows = self.db.execute("SELECT seq, body FROM ann WHERE key IS NULL OR key NOT IN (SELECT key FROM img) "
                               "ORDER BY seq")
        for seq, body in rows:
            yield seq, pickle.loads(body)

    def images(self) -> Iterator[Tuple[dict, List[dict]]]:
        """Each image entry in file order, with its annotations in file order."""
        for key, body in self.db.execute("SELECT key, body FROM img ORDER BY ord"):
            anns = self.db.execute("SELECT body FROM ann WHERE key = ? ORDER BY seq", (key,))
            yield pickle.loads(body), [pickle.loads(b) for (b,) in anns]


def _load_index(json_path: str) -> _Index:
    """Stream ``json_path`` into an `_Index`. A file the stream cannot read is parsed whole
    with `read_json_file`, which raises the error the reader has always reported (malformed
    JSON with its line and column, not UTF-8, unreadable, nested too deeply)."""
    index = _Index()
    try:
        with io.open_file(json_path, "rb") as f:
            _stream_into(index, f)
    except (ijson.JSONError, ValueError, OSError, RecursionError, UserError):
        index.close()
        doc = read_json_file(json_path, "COCO annotation file")
        if not isinstance(doc, dict):
            raise AnnotationError(json_path, "expected a JSON object with 'images', 'annotations', 'categories'")
        index = _Index()
        try:
            for key, value in doc.items():
                index.add(key, value, False)
        except RecursionError:  # decoded, but too deep to store
            index.close()
            raise AnnotationError(json_path, "JSON nested too deeply") from None
    index.finish()
    return index


def _annotation_skips(stream, name, index: _Index) -> None:
    for i, ann in index.orphans():
        if not isinstance(ann, dict):
            stream.skip(name, "bad_annotation", f"annotations[{i}]: not an object", "instance")
            continue
        iid = ann.get("image_id")
        if not (_is_int(iid) or isinstance(iid, str)):
            stream.skip(name, "bad_annotation", f"annotations[{i}]: image_id must be an integer, got {iid!r}"[:300],
                        "instance")
            continue
        stream.skip(name, "missing_image_id", f"annotation id {ann.get('id', i)!r} points to image id {iid!r}, "
                    "which is not in 'images'"[:300], "instance")


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
