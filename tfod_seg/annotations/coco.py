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

Memory does not grow with the dataset: the file is read in a stream (`_TopLevel`: the standard
library's JSON decoder on one ``images``/``annotations`` element at a time) into a temporary
on-disk SQLite index (`_Index`: images in file order, annotations by image id), and each image
is built from its own rows when the stream reaches it. A COCO train2017 file (450 MB) or an
LVIS file (1 GB) costs the decoder's buffer and SQLite's page cache, not the parsed document,
plus a temporary file of about the JSON's size in the temporary folder (``TMPDIR``).
A file the stream cannot read (malformed, not UTF-8, not an object at the top) is parsed whole
once, to report its error exactly as before.
"""

from __future__ import annotations

import codecs
import json
import math
import os
import pickle
import re
import sqlite3
from typing import Dict, Iterator, List, Optional, Tuple

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
CHUNK_BYTES = 1 << 20
# An element is decoded only with this many characters (or the end of the file) after it in the
# buffer, so a number is never cut at a chunk boundary.
LOOKAHEAD_CHARS = 1 << 16
STREAMED_ARRAYS = ("images", "annotations")
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
PICKLE_PROTOCOL = 5


class _NotStreamable(ValueError):
    """The stream met something it does not read (the whole-file parse then reports it)."""


class _TopLevel:
    """A JSON file whose top level is an object, read in chunks: `members()` yields
    ``(key, value, False)`` for each member, except that the elements of an array under a key
    in ``STREAMED_ARRAYS`` come one at a time as ``(key, element, True)`` after a
    ``(key, list, False)`` marker. Each value is decoded by the standard library's decoder."""

    def __init__(self, f):
        self.f = f
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf, self.pos, self.eof, self.first = "", 0, False, True

    def _fill(self) -> None:
        data = self.f.read(max(CHUNK_BYTES, len(self.buf) - self.pos, 3))  # doubles for a long element
        self.eof = not data
        if self.first and data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8):]
        self.first = False
        self.buf = self.buf[self.pos:] + self.decoder.decode(data, final=self.eof)
        self.pos = 0

    def _peek(self) -> str:
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos:self.pos + 1]
            self._fill()

    def _expect(self, chars: str) -> str:
        c = self._peek()
        if not c or c not in chars:
            raise _NotStreamable(f"expected one of {chars!r} at character {self.pos}")
        self.pos += 1
        return c

    def _value(self):
        self._peek()  # past whitespace
        while True:
            if len(self.buf) - self.pos < LOOKAHEAD_CHARS and not self.eof:
                self._fill()
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if self.eof:
                    raise
                self._fill()  # an element longer than the buffer: read on
                continue
            if end == len(self.buf) and not self.eof:
                self._fill()
                continue
            self.pos = end
            return value

    def members(self) -> Iterator[tuple]:
        self._expect("{")
        if self._peek() == "}":
            self.pos += 1
        else:
            while True:
                key = self._value()
                if not isinstance(key, str):
                    raise _NotStreamable("object key is not a string")
                self._expect(":")
                if key in STREAMED_ARRAYS and self._peek() == "[":
                    yield from self._array(key)
                else:
                    yield key, self._value(), False
                if self._expect(",}") == "}":
                    break
        if self._peek():
            raise _NotStreamable("extra data after the top-level object")

    def _array(self, key: str) -> Iterator[tuple]:
        self.pos += 1
        yield key, list, False
        if self._peek() == "]":
            self.pos += 1
            return
        while True:
            yield key, self._value(), True
            if self._expect(",]") == "]":
                return


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
        """One ``(key, value, element)`` from `_TopLevel.members` (a later duplicate key replaces
        an earlier one, as in ``json.loads``). Rows hold pickles: loading one is ten times faster
        than decoding its JSON again (the database is this process's own, deleted after use)."""
        if not element:
            self.kinds[key] = list if value is list else type(value)
            if value is list or key in STREAMED_ARRAYS:
                self._restart(key, value if value is not list else [])
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
            for key, value, element in _TopLevel(f).members():
                index.add(key, value, element)
    except (ValueError, OSError, RecursionError, UnicodeDecodeError, UserError):
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
