"""LabelMe JSON (labelme 3.x to 5.x) → `Sample`s, and `Sample`-like shapes → LabelMe JSON.

Coordinates: LabelMe ``points`` are ``[x, y]`` absolute pixels of the upright image (LabelMe
applies the EXIF orientation when it shows an image; see `tfod_seg.data.images`).

Shapes:

* ``polygon`` (at least 3 points), ``rectangle`` (2 corner points), ``circle`` (centre and a
  point on the circle; rasterised as a 64-gon at most) become polygon masks;
* ``mask``: a base64 PNG bitmap whose top-left corner is the first of its two points;
* shapes with the same ``(label, group_id)`` are ONE instance (an occluded object drawn in
  parts); shapes without ``group_id`` are one instance each;
* ``line``, ``linestrip``, ``point``, ``points`` have no area: skipped and counted;
* labels in ``ignore_labels`` (``__ignore__``, ``_background_``) are left out and counted;
* shapes partly outside the image are clipped to it; wholly outside ones are skipped.

Every value is checked before it is used: ``label`` a non-empty string, ``group_id`` an integer
(or string) or null, ``points`` finite numbers (NaN, infinities and overflowing values skip the
shape), ``imageHeight``/``imageWidth`` positive integers, ``imagePath`` a string. Points far
outside the image are clipped before rasterising (`tfod_seg.data.masks`). Files may be local or
URLs; text must be UTF-8 (a BOM is allowed).

The image comes from ``imageData`` when embedded, else from ``imagePath`` relative to the JSON
file. An ``imagePath`` that resolves outside the dataset root is refused (skipped with its
reason) unless ``allow_outside_root`` is set. Each JSON file is one `Sample`; its
``source_id`` is its 1-based position in the sorted file list (numeric, as Model Garden's
evaluator requires) and its ``filename`` the image path relative to the root.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import os
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from tfod_seg import io
from tfod_seg.annotations.base import FormatReader, ReaderOptions
from tfod_seg.data.images import image_size, open_image
from tfod_seg.data.masks import rasterize
from tfod_seg.data.stream import SampleStream
from tfod_seg.data.types import Bitmap, Instance, Polygons, Sample
from tfod_seg.errors import AnnotationError, UserError

IGNORE_LABELS = ("__ignore__", "_background_")
NO_AREA_SHAPES = ("line", "linestrip", "point", "points")
AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")
LABELME_VERSION = "5.4.1"


def _decode_png_b64(data: str):
    """base64 PNG → bool array (module-level so a `Bitmap` holding it can be pickled)."""
    import numpy as np

    img = open_image(base64.b64decode(data))  # pixel limit checked before decoding
    arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., 0] if img.mode != "RGBA" else arr[..., 3]
    return arr != 0


def find_json_files(root: str) -> List[str]:
    out = []
    for dirpath, dirnames, filenames in io.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out.extend(io.join(dirpath, f) for f in filenames if f.lower().endswith(".json") and not f.startswith("."))
    return sorted(out, key=lambda p: io.relpath(p, root))


def _polygon_box(xs: Sequence[float], ys: Sequence[float]) -> Tuple[float, float, float, float]:
    return min(xs), min(ys), max(xs), max(ys)


def _circle_points(cx: float, cy: float, px: float, py: float) -> List[float]:
    r = math.hypot(px - cx, py - cy)
    n = int(max(16, min(64, math.ceil(2 * math.pi * r / 4)))) if math.isfinite(r) else 16
    flat: List[float] = []
    for k in range(n):
        a = 2 * math.pi * k / n
        flat += [cx + r * math.cos(a), cy + r * math.sin(a)]
    return flat


def read_labelme(root, *, allow_outside_root: bool = False, ignore_labels: Iterable[str] = IGNORE_LABELS,
                 drop_empty: bool = False) -> SampleStream:
    """Stream `Sample`s from every ``*.json`` under ``root`` (sorted, recursive; local or URL).

    Per-file problems (malformed JSON, missing image, bad shapes) are recorded on the returned
    stream's ``skipped`` list, never dropped silently. ``root`` that is not a directory raises
    `UserError`. Images without instances are kept as negatives unless ``drop_empty``
    (then they are skipped and counted).
    """
    root = io.check_path(root, "LabelMe folder")
    if root.lower().endswith(".json") and io.isfile(root):
        files, root = [root], io.dirname(root) or "."
    elif io.isdir(root):
        files = find_json_files(root)
    else:
        raise UserError(f"{root}: not a directory of LabelMe JSON files (expected e.g. 'data/labelme/')")
    if not files:
        raise UserError(f"{root}: no LabelMe *.json files found")
    ignore = frozenset(ignore_labels)
    stream = SampleStream(total=len(files), source=root)
    return stream.attach(lambda s: _iter(s, root, files, allow_outside_root, ignore, drop_empty))


def _open(input_path: str, options: ReaderOptions) -> SampleStream:
    return read_labelme(input_path, allow_outside_root=options.allow_outside_root, drop_empty=options.drop_empty)


READER = FormatReader("labelme", "folder of LabelMe JSON files (searched recursively), or one JSON file", _open)


def _iter(stream: SampleStream, root: str, files: List[str], allow_outside_root: bool,
          ignore: frozenset, drop_empty: bool) -> Iterator[Sample]:
    for index, path in enumerate(files, start=1):
        rel = io.relpath(path, root)
        try:
            sample = _read_one(stream, path, rel, root, index, allow_outside_root, ignore)
        except _Skip as e:
            stream.skip(rel, e.kind, e.message)
            continue
        except AnnotationError as e:
            stream.skip(rel, "bad_annotation", str(e))
            continue
        if drop_empty and not sample.instances:
            stream.skip(rel, "no_instances", "image has no instances (dropped by --drop-empty)")
            continue
        yield sample


class _Skip(AnnotationError):
    """A problem that skips the whole file (recorded on the stream, not raised to the user)."""

    def __init__(self, path, kind, message):
        self.kind = kind
        self.message = message
        super().__init__(path, message)


class _Unreadable(UserError):
    pass


def _load_doc(path: str, rel: str) -> dict:
    """The JSON object of one LabelMe file; anything else is a `_Skip` with its reason."""
    try:
        text = io.read_bytes(path, _Unreadable, "LabelMe JSON file").decode("utf-8-sig")
        doc = json.loads(text)
    except _Unreadable as e:
        raise _Skip(rel, "unreadable_file", str(e)) from None
    except json.JSONDecodeError as e:
        raise _Skip(rel, "malformed_json", f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise _Skip(rel, "malformed_json", f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except RecursionError:
        raise _Skip(rel, "malformed_json", "JSON nested too deeply") from None
    if not isinstance(doc, dict) or "shapes" not in doc:
        raise _Skip(rel, "not_labelme", "not a LabelMe file (no 'shapes' list at top level)")
    if not isinstance(doc["shapes"], list):
        raise _Skip(rel, "malformed_json", f"'shapes' must be a list, got {type(doc['shapes']).__name__}")
    return doc


def _image_source(doc: dict, path: str, rel: str, root: str, allow_outside_root: bool):
    """``(image_file, image_bytes)``: one of them set, from ``imageData`` or ``imagePath``."""
    image_path_field, image_data = doc.get("imagePath"), doc.get("imageData")
    if image_data:
        try:
            if not isinstance(image_data, str):
                raise TypeError(f"expected a base64 string, got {type(image_data).__name__}")
            return None, base64.b64decode(image_data, validate=False)
        except (binascii.Error, ValueError, TypeError) as e:
            raise _Skip(rel, "bad_image", f"imageData is not valid base64 ({e})") from None
    if not image_path_field:
        raise _Skip(rel, "missing_image", "neither imageData nor imagePath is set")
    if not isinstance(image_path_field, str):
        raise _Skip(rel, "bad_annotation", f"imagePath must be a string, got {image_path_field!r}"[:300])
    image_file = io.join(io.dirname(path), image_path_field.replace("\\", "/"))
    if not io.is_url(image_file):
        image_file = os.path.normpath(image_file)
    if not allow_outside_root and not io.is_inside(image_file, root):
        raise _Skip(rel, "path_outside_root",
                    f"imagePath '{image_path_field}' escapes the dataset root {root} "
                    "(refused; pass --allow-outside-root to accept it)")
    if not io.isfile(image_file):
        raise _Skip(rel, "missing_image", f"image file not found: {image_file} (from imagePath '{image_path_field}')")
    return image_file, None


def _declared_size(doc: dict, rel: str, image_file, image_bytes) -> Tuple[int, int]:
    height, width = doc.get("imageHeight"), doc.get("imageWidth")
    if height is None or width is None:  # labelme 3.x files may lack them: read the image header
        height, width = image_size(image_file, image_bytes, source=rel)
    if any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in (height, width)):
        raise _Skip(rel, "bad_annotation",
                    f"imageHeight/imageWidth must be positive integers, got {height!r}/{width!r}"[:300])
    return height, width


def _read_one(stream, path, rel, root, index, allow_outside_root, ignore) -> Sample:
    doc = _load_doc(path, rel)
    image_file, image_bytes = _image_source(doc, path, rel, root, allow_outside_root)
    height, width = _declared_size(doc, rel, image_file, image_bytes)
    if image_file is not None:
        filename = io.relpath(image_file, root) if io.is_inside(image_file, root) else image_file
    else:
        name = doc.get("imagePath") if isinstance(doc.get("imagePath"), str) else None
        filename = str(name or os.path.splitext(rel)[0] + ".jpg").replace("\\", "/")
    instances = []
    for (label, _), members in _group_shapes(stream, rel, doc["shapes"], ignore).items():
        inst = _group_to_instance(stream, rel, label, members, height, width)
        if inst is not None:
            instances.append(inst)
    return Sample(source_id=str(index), filename=filename, height=height, width=width,
                  instances=tuple(instances), image_path=image_file, image_bytes=image_bytes, source=rel)


def _shape_problem(shape, k: int, ignore: frozenset) -> Optional[Tuple[str, str]]:
    """``(kind, reason)`` when shape ``k`` cannot make an instance, else None."""
    where = f"shape {k}"
    if not isinstance(shape, dict):
        return "bad_shape", f"{where}: not an object"
    label = shape.get("label")
    stype = shape.get("shape_type") or "polygon"  # labelme 3.x omitted it for polygons
    if not isinstance(label, str) or not label.strip():
        return "bad_shape", f"{where}: label must be a non-empty string, got {label!r}"[:300]
    if label in ignore:
        return "ignored_label", f"{where}: label '{label}' is ignored"
    if not isinstance(stype, str):
        return "bad_shape", f"{where} '{label}': shape_type must be a string, got {stype!r}"[:300]
    if stype in NO_AREA_SHAPES:
        return "no_area_shape", (f"{where} '{label}': shape_type '{stype}' has no area "
                                 "(only polygon, rectangle, circle and mask make instance masks)")
    if stype not in AREA_SHAPES:
        return "unknown_shape_type", (f"{where} '{label}': unknown shape_type '{stype}' "
                                      f"(expected one of {', '.join(AREA_SHAPES + NO_AREA_SHAPES)})")
    gid = shape.get("group_id")
    if gid is not None and (isinstance(gid, bool) or not isinstance(gid, (int, str))):
        return "bad_shape", f"{where} '{label}': group_id must be an integer or null, got {gid!r}"[:300]
    return None


def _group_shapes(stream, rel, shapes, ignore) -> Dict[tuple, List[Tuple[int, dict]]]:
    """Shapes that can make instances, grouped by ``(label, group_id)`` (no group: one each)."""
    groups: Dict[tuple, List[Tuple[int, dict]]] = {}
    for k, shape in enumerate(shapes):
        problem = _shape_problem(shape, k, ignore)
        if problem is not None:
            label = shape.get("label") if isinstance(shape, dict) and isinstance(shape.get("label"), str) else None
            stream.skip(rel, problem[0], problem[1], "instance", label=label, index=k)
            continue
        label, gid = shape["label"], shape.get("group_id")
        key = (label, gid) if gid is not None else (label, ("__single__", k))
        groups.setdefault(key, []).append((k, shape))
    return groups


def _points(shape) -> Optional[List[Tuple[float, float]]]:
    pts = shape.get("points")
    if not isinstance(pts, list):
        return None
    out = []
    for p in pts:
        if not (isinstance(p, (list, tuple)) and len(p) == 2) or any(isinstance(v, bool) for v in p):
            return None
        try:
            x, y = float(p[0]), float(p[1])
        except (TypeError, ValueError, OverflowError):
            return None
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        out.append((x, y))
    return out


def _polygon_of(stype: str, pts, where: str):
    """Flat polygon of a polygon/rectangle/circle shape, or ``(kind, reason)`` for a skip."""
    if stype == "polygon":
        if len(pts) < 3:
            return "too_few_points", f"{where}: polygon with {len(pts)} points (need at least 3)"
        flat = tuple(v for p in pts for v in p)
    elif stype == "rectangle":
        if len(pts) < 2:
            return "too_few_points", f"{where}: rectangle needs 2 corner points, got {len(pts)}"
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        flat = (x0, y0, x1, y0, x1, y1, x0, y1)
    else:  # circle
        if len(pts) != 2:
            return "too_few_points", f"{where}: circle needs centre and rim points, got {len(pts)}"
        flat = tuple(_circle_points(pts[0][0], pts[0][1], pts[1][0], pts[1][1]))
    if not all(math.isfinite(v) for v in flat):
        return "bad_shape", f"{where}: {stype} coordinates overflow (not finite)"
    xs, ys = flat[0::2], flat[1::2]
    if max(xs) - min(xs) <= 0 or max(ys) - min(ys) <= 0:
        return "zero_area", f"{where}: {stype} has zero area (all points on one line)"
    return flat


def _bitmap_of(shape, pts, where: str):
    """``((array, x0, y0), box)`` of a mask shape, or ``(kind, reason)`` for a skip."""
    import numpy as np

    data = shape.get("mask")
    if not isinstance(data, str) or len(pts) < 1:
        return "bad_shape", f"{where}: mask shape needs a base64 PNG 'mask' and its box points"
    try:
        arr = _decode_png_b64(data)
    except Exception as e:  # corrupt base64/PNG, or over the pixel limit
        return "bad_shape", f"{where}: 'mask' is not a usable base64 PNG ({e})"[:400]
    if arr.ndim != 2:
        return "bad_shape", f"{where}: 'mask' PNG must be 2-D, got shape {arr.shape}"
    x0, y0 = int(pts[0][0]), int(pts[0][1])
    ys_nz, xs_nz = np.nonzero(arr)
    if not len(xs_nz):
        return "empty_mask", f"{where}: mask bitmap is empty"
    box = (x0 + int(xs_nz.min()), y0 + int(ys_nz.min()), x0 + int(xs_nz.max()) + 1, y0 + int(ys_nz.max()) + 1)
    return (arr, x0, y0), box


def _group_to_instance(stream, rel, label, members, height, width) -> Optional[Instance]:
    parts: List[Tuple[float, ...]] = []
    bitmaps = []
    boxes = []
    for k, shape in members:
        stype = shape.get("shape_type") or "polygon"
        where = f"shape {k} '{label}'"
        pts = _points(shape)
        if pts is None:
            stream.skip(rel, "bad_shape", f"{where}: 'points' must be a list of [x, y] numbers", "instance",
                        label=label, index=k)
            continue
        got = _bitmap_of(shape, pts, where) if stype == "mask" else _polygon_of(stype, pts, where)
        if isinstance(got[0], str):  # (kind, reason)
            stream.skip(rel, got[0], got[1], "instance", label=label, index=k)
        elif stype == "mask":
            bitmaps.append(got[0])
            boxes.append(got[1])
        else:
            parts.append(got)
            boxes.append(_polygon_box(got[0::2], got[1::2]))
    if not boxes:
        return None
    return _make_instance(stream, rel, label, members[0][0], parts, bitmaps, boxes, height, width)


def _make_instance(stream, rel, label, idx, parts, bitmaps, boxes, height, width) -> Optional[Instance]:
    xmin = max(0.0, min(b[0] for b in boxes))
    ymin = max(0.0, min(b[1] for b in boxes))
    xmax = min(float(width), max(b[2] for b in boxes))
    ymax = min(float(height), max(b[3] for b in boxes))
    if xmax <= xmin or ymax <= ymin:
        stream.skip(rel, "outside_image", f"shape {idx} '{label}' lies entirely outside the {width}x{height} image",
                    "instance", label=label, index=idx)
        return None
    if bitmaps and (parts or len(bitmaps) > 1):
        mask = Bitmap(functools.partial(_union_mask, tuple(parts), tuple(bitmaps), height, width))
    elif bitmaps:
        arr, x0, y0 = bitmaps[0]
        mask = Bitmap(arr, x0, y0)
    else:
        mask = Polygons(tuple(parts))
    return Instance(label=label, box=(xmin, ymin, xmax, ymax), mask=mask)


def read_labelme_shapes(path) -> Tuple[int, int, List[Instance], List[Dict]]:
    """The instances drawn in ONE LabelMe file and the frame size they were drawn on:
    ``(height, width, instances, skipped)``. Unlike `read_labelme` the image itself is not
    needed when the file declares ``imageHeight``/``imageWidth`` (zone drawings often travel
    without their frame). A file that cannot be read raises `AnnotationError`; unusable
    shapes are returned as skip records."""
    path = io.check_path(path, "LabelMe file")
    rel = io.basename(path)
    doc = _load_doc(path, rel)
    height, width = doc.get("imageHeight"), doc.get("imageWidth")
    if height is None or width is None:
        image_file, image_bytes = _image_source(doc, path, rel, io.dirname(path) or ".", True)
        height, width = _declared_size(doc, rel, image_file, image_bytes)
    else:
        height, width = _declared_size(doc, rel, None, None)
    stream = SampleStream(total=1, source=path)
    instances = [inst for (label, _), members in _group_shapes(stream, rel, doc["shapes"], frozenset(IGNORE_LABELS)).items()
                 if (inst := _group_to_instance(stream, rel, label, members, height, width)) is not None]
    return height, width, instances, stream.skipped


def _union_mask(parts, bitmaps, height, width):
    """Union of polygon parts and placed bitmaps as one full-image mask (mixed groups)."""
    import numpy as np

    out = np.zeros((height, width), np.uint8)
    if parts:
        out |= rasterize(Polygons(parts), height, width)
    for arr, x0, y0 in bitmaps:
        out |= rasterize(Bitmap(arr, x0, y0), height, width)
    return out


def write_labelme(json_path, *, image_path: str, height: int, width: int, shapes: List[dict],
                  image_data: Optional[bytes] = None) -> None:
    """Write a LabelMe 5.x JSON file (atomically, compact JSON on one line).

    ``image_path`` is stored as given (LabelMe expects it relative to the JSON file);
    ``image_data`` (encoded image bytes) is embedded as base64 when given. Each shape dict is
    LabelMe's: ``label``, ``points`` ([[x, y], ...] absolute pixels), ``shape_type``,
    ``group_id``, ``flags``, and for ``shape_type == "mask"`` a base64 PNG ``mask``.
    """
    out_shapes = []
    for s in shapes:
        shape = {
            "label": s["label"],
            "points": [[float(x), float(y)] for x, y in s["points"]],
            "group_id": s.get("group_id"),
            "description": s.get("description", ""),
            "shape_type": s.get("shape_type", "polygon"),
            "flags": dict(s.get("flags") or {}),
            "mask": s.get("mask"),
        }
        out_shapes.append(shape)
    doc = {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": out_shapes,
        "imagePath": image_path,
        "imageData": base64.b64encode(image_data).decode("ascii") if image_data is not None else None,
        "imageHeight": int(height),
        "imageWidth": int(width),
    }
    # Compact (no indentation): a third of inference's writing cost was pretty-printing;
    # LabelMe reads it the same.
    io.atomic_write_text(json_path, json.dumps(doc, separators=(",", ":")) + "\n")


def mask_to_b64_png(mask) -> str:
    """A 2-D bool/0-1 array → base64 PNG as LabelMe stores ``mask`` shapes."""
    import io as _bytes_io

    import numpy as np
    from PIL import Image

    buf = _bytes_io.BytesIO()
    Image.fromarray(np.asarray(mask).astype(bool)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")
