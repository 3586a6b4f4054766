"""Pascal VOC (2012 layout, and the mask-only layouts other tools export) → `Sample`s.

Layouts under ``root``:

* **VOC 2012**: ``Annotations/ID.xml``, ``JPEGImages/<filename>``, instance masks in
  ``SegmentationObject/ID.png`` (+ ``SegmentationClass/ID.png``) and
  ``ImageSets/Segmentation/{train,val,trainval}.txt``.
* **Mask only** (labelme's ``labelme2voc``, CVAT and Datumaro "segmentation" exports): no
  ``Annotations/``; every value ``k`` in ``SegmentationObject/ID.png`` is one instance, its class
  the majority value under it in ``SegmentationClass/ID.png``, its box the mask's bounds. The
  image is ``JPEGImages/ID.*``. ``SegmentationObjectPNG/`` / ``SegmentationClassPNG/`` (labelme's
  folder names) are used when the plain folders hold no PNGs.

Mask encodings: palette PNGs (the VOC files: the index is the value), 8-bit greyscale (the
grey level is the value) and RGB colour PNGs (CVAT exports, files re-saved by an editor): an
object colour is looked up in the VOC colour map (instance ``k`` has colour ``k``; the void
colour (224, 224, 192) is 255); a class colour in ``labelmap.txt`` when it gives colours, else
in the VOC colour map. A colour found in no table counts as background, with a note in the
report.

Class names, by class value: ``labelmap.txt`` (CVAT/Datumaro: ``name:r,g,b:parts:actions``, one
line per class in value order, ``background`` first), else ``class_names.txt`` (labelme: one
name per line, ``_background_`` first), else the 20 VOC classes.

Coordinates: VOC ``bndbox`` values are 1-based inclusive pixel indices; ``xmin=1, xmax=10``
covers pixels 0..9, so the box becomes ``(xmin - 1, ymin - 1, xmax, ymax)`` in absolute pixel
edges; non-finite values are a counted skip.

Masks: in ``SegmentationObject/ID.png`` the value ``k`` marks the k-th ``<object>`` of the XML
(1-based, all objects counted, difficult or not), 0 is background and 255 the "void" border,
which belongs to no instance; values beyond the object count are noted in the report. When the
class of an object is known, the class under it in ``SegmentationClass/ID.png`` is checked
against the XML name and a mismatch is skipped and reported. A mask PNG whose size differs from
the image is a counted skip.

Which images: the ids in ``ImageSets/Segmentation/<image_set>.txt`` (default ``trainval``) when
that file exists; else the ids having a ``SegmentationObject`` PNG; else every XML (box-only:
their instances are then reported as having no mask). Objects marked ``difficult`` are skipped
and counted unless ``include_difficult``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from tfod_seg import io
from tfod_seg.annotations.base import FormatReader, ReaderOptions
from tfod_seg.data.images import image_size, open_image
from tfod_seg.data.masks import MaskError
from tfod_seg.data.stream import SampleStream
from tfod_seg.data.types import Bitmap, Instance, Sample
from tfod_seg.errors import AnnotationError, UserError

if TYPE_CHECKING:
    import numpy as np

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
VOID = 255
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def voc_colormap(n: int = 256) -> List[Tuple[int, int, int]]:
    """The VOC colour map (``VOCdevkit`` ``labelcolormap.m``): value ``i`` → ``(r, g, b)``."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


# -- class tables ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ClassTable:
    """Class names by mask value, and (for RGB class PNGs) class colours by value."""

    names: Tuple[str, ...]
    colours: Optional[Tuple[Tuple[int, int, int], ...]] = None
    source: str = "the 20 VOC classes"

    def index(self, name: str) -> Optional[int]:
        return self.names.index(name) if name in self.names else None

    def name(self, value: int) -> str:
        return self.names[value] if 0 <= value < len(self.names) else str(value)


def _parse_labelmap_txt(path: str) -> ClassTable:
    names, colours = [], []
    for n, line in enumerate(io.read_text(path, UserError, "VOC labelmap.txt").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, rest = line.partition(":")
        colour = rest.split(":", 1)[0].strip()
        if not name.strip():
            raise UserError(f"{path}:{n}: expected 'name:r,g,b:parts:actions', got {line!r}")
        try:
            rgb = tuple(int(v) for v in colour.split(",")) if colour else None
        except ValueError:
            raise UserError(f"{path}:{n}: colour must be 'r,g,b' integers, got {colour!r}") from None
        if rgb is not None and (len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb)):
            raise UserError(f"{path}:{n}: colour must be three values 0..255, got {colour!r}")
        names.append(name.strip())
        colours.append(rgb)
    if not names:
        raise UserError(f"{path}: no classes found (expected lines 'name:r,g,b::')")
    have = all(c is not None for c in colours)
    return ClassTable(tuple(names), tuple(colours) if have else None, "labelmap.txt")


def read_class_table(root: str) -> ClassTable:
    """``labelmap.txt``, else ``class_names.txt``, else the VOC classes (see module docstring)."""
    lm = io.join(root, "labelmap.txt")
    if io.isfile(lm):
        return _parse_labelmap_txt(lm)
    cn = io.join(root, "class_names.txt")
    if io.isfile(cn):
        names = [line.strip() for line in io.read_text(cn, UserError, "class_names.txt").splitlines() if line.strip()]
        if not names:
            raise UserError(f"{cn}: no class names (expected one per line, '_background_' first)")
        return ClassTable(tuple(names), None, "class_names.txt")
    return ClassTable(VOC_CLASSES)


# -- mask PNGs -------------------------------------------------------------------------------
def _colour_values(rgb: "np.ndarray", table: Sequence[Tuple[int, int, int]], extra: Dict[Tuple[int, int, int], int]):
    """RGB array → values through ``table`` (colour i → value i) and ``extra``; unknown
    colours → 0. Returns ``(values, unknown_pixels)``."""
    import numpy as np

    lookup = {c: i for i, c in enumerate(table) if c is not None}
    lookup.update(extra)
    code = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    uniq, inverse = np.unique(code, return_inverse=True)
    mapped = np.array([lookup.get(((int(u) >> 16) & 255, (int(u) >> 8) & 255, int(u) & 255), -1) for u in uniq],
                      np.int64)
    values = mapped[inverse].reshape(code.shape)
    unknown = int((values < 0).sum())
    return np.where(values < 0, 0, values).astype(np.int64), unknown


@functools.lru_cache(maxsize=8)
def load_mask_png(path: str, colours: Optional[Tuple[Tuple[int, int, int], ...]] = None):
    """A VOC mask PNG as ``(values, unknown_pixels)``: palette indices, grey levels, or RGB
    colours mapped through ``colours`` (default: the VOC colour map, void colour = 255)."""
    import numpy as np

    img = open_image(io.read_bytes(path, UserError, "mask PNG"), path)
    if img.mode in ("P", "L"):
        return np.asarray(img).astype(np.int64), 0
    if img.mode in ("I", "I;16", "I;16B", "I;16L"):
        return np.asarray(img).astype(np.int64), 0
    rgb = np.asarray(img.convert("RGB"))
    if colours is None:
        return _colour_values(rgb, voc_colormap(), {(224, 224, 192): VOID})
    return _colour_values(rgb, colours, {})


def _mask_values(path: str, height: int, width: int, colours=None):
    try:
        values, unknown = load_mask_png(path, colours)
    except (UserError, OSError, ValueError) as e:
        raise MaskError("bad_mask_png", f"cannot read {path}: {e}") from None
    if values.shape != (height, width):
        raise MaskError("mask_size_mismatch", f"{path} is {values.shape[1]}x{values.shape[0]} (WxH), "
                                              f"the image is {width}x{height}")
    return values, unknown


def _object_mask(obj_png: str, k: int, class_png: Optional[str], class_index: Optional[int], label: str,
                 table: ClassTable, height: int, width: int):
    """The k-th object's mask; raises MaskError when SegmentationClass disagrees with the XML."""
    import numpy as np

    idx, _ = _mask_values(obj_png, height, width)
    mask = idx == k
    if class_png is not None and class_index is not None and mask.any():
        cls, _ = _mask_values(class_png, height, width, table.colours)
        values, counts = np.unique(cls[mask], return_counts=True)
        major = int(values[np.argmax(counts)])
        if major != class_index:
            raise MaskError("voc_class_mismatch", f"SegmentationClass marks object {k} as '{table.name(major)}' "
                                                  f"but the XML says '{label}'")
    return mask


# -- the reader -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Layout:
    root: str
    ann_dir: Optional[str]
    obj_dir: Optional[str]
    class_dir: Optional[str]
    table: ClassTable


def _png_dir(root: str, name: str) -> Optional[str]:
    for d in (io.join(root, name), io.join(root, name + "PNG")):
        if io.isdir(d) and any(f.lower().endswith(".png") for f in io.listdir(d)):
            return d
    return None


def _layout(root: str) -> _Layout:
    ann_dir = io.join(root, "Annotations")
    obj_dir = _png_dir(root, "SegmentationObject")
    if not io.isdir(ann_dir):
        if obj_dir is None:
            raise UserError(f"{root}: not a Pascal VOC root (no Annotations/ folder and no SegmentationObject/ PNGs; "
                            "expected e.g. VOCdevkit/VOC2012 or a labelme2voc / CVAT VOC export)")
        ann_dir = None
    return _Layout(root, ann_dir, obj_dir, _png_dir(root, "SegmentationClass"), read_class_table(root))


def _ids(stream: SampleStream, lay: _Layout, image_set: Optional[str]) -> List[str]:
    set_file = io.join(lay.root, "ImageSets", "Segmentation", f"{image_set or 'trainval'}.txt")
    if io.isfile(set_file):
        text = io.read_text(set_file, UserError, "image set file")
        ids = [line.split()[0] for line in text.splitlines() if line.strip()]
        rel = io.relpath(set_file, lay.root)
        stream.note(rel, "voc_image_set", f"using the {len(ids)} ids listed in {rel}")
        return ids
    if image_set:
        raise UserError(f"{set_file}: image set file not found")
    if lay.obj_dir is not None:
        ids = sorted(os.path.splitext(f)[0] for f in io.listdir(lay.obj_dir) if f.lower().endswith(".png"))
        stream.note(io.basename(lay.obj_dir), "voc_image_set", f"using the {len(ids)} ids with a SegmentationObject PNG")
        return ids
    return sorted(os.path.splitext(f)[0] for f in io.listdir(lay.ann_dir) if f.lower().endswith(".xml"))


def read_voc(root, *, include_difficult: bool = False, image_set: Optional[str] = None,
             drop_empty: bool = False) -> SampleStream:
    """Stream `Sample`s from a VOC root (see module docstring)."""
    root = io.check_path(root, "VOC root")
    if not io.isdir(root):
        raise UserError(f"{root}: not a Pascal VOC root (not a folder; expected e.g. VOCdevkit/VOC2012)")
    load_mask_png.cache_clear()  # the cache is per run: files may change between runs
    lay = _layout(root)
    stream = SampleStream(source=root)
    ids = _ids(stream, lay, image_set)
    if not ids:
        raise UserError(f"{root}: no VOC annotations found")
    stream.total = len(ids)
    if lay.table.source != "the 20 VOC classes":
        stream.note(lay.table.source, "voc_class_names", f"class names from {lay.table.source}: "
                    f"{', '.join(lay.table.names[:20])}{', ...' if len(lay.table.names) > 20 else ''}")

    def gen(s: SampleStream):
        for index, image_id in enumerate(ids, start=1):
            rel = f"Annotations/{image_id}.xml" if lay.ann_dir else f"{io.basename(lay.obj_dir)}/{image_id}.png"
            try:
                if lay.ann_dir:
                    sample = _read_xml_sample(s, lay, rel, image_id, index, include_difficult)
                else:
                    sample = _read_mask_sample(s, lay, rel, image_id, index)
            except AnnotationError as e:
                s.skip(rel, getattr(e, "kind", "bad_annotation"), getattr(e, "message", str(e)))
                continue
            if drop_empty and not sample.instances:
                s.skip(rel, "no_instances", "image has no objects (dropped by --drop-empty)")
                continue
            yield sample

    return stream.attach(gen)


def _open(input_path: str, options: ReaderOptions) -> SampleStream:
    return read_voc(input_path, include_difficult=options.include_difficult, image_set=options.image_set,
                    drop_empty=options.drop_empty)


READER = FormatReader("voc", "Pascal VOC root (Annotations/ JPEGImages/ SegmentationObject/ SegmentationClass/), "
                             "or a mask-only VOC export (labelme2voc, CVAT)", _open)


class _Skip(AnnotationError):
    def __init__(self, path, kind, message):
        self.kind, self.message = kind, message
        super().__init__(path, message)


def _text(node, path: str, rel: str, required: bool = True) -> Optional[str]:
    el = node.find(path)
    if el is None or el.text is None or not el.text.strip():
        if required:
            raise _Skip(rel, "bad_annotation", f"missing <{path}>")
        return None
    return el.text.strip()


def _parse_xml(lay: _Layout, rel: str):
    from lxml import etree

    xml_path = io.join(lay.root, rel)
    try:
        data = io.read_bytes(xml_path, UserError, "annotation file")
    except UserError:
        raise _Skip(rel, "missing_annotation", "annotation file not found") from None
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise _Skip(rel, "malformed_xml", f"malformed XML at line {e.lineno}: {e.msg}") from None


def _xml_size(ann, rel: str, image_path: str) -> Tuple[int, int]:
    try:
        width = float(_text(ann, "size/width", rel))
        height = float(_text(ann, "size/height", rel))
        if not (math.isfinite(width) and math.isfinite(height)):
            raise ValueError
        width, height = int(width), int(height)
    except (_Skip, ValueError, OverflowError):
        return image_size(image_path, source=rel)
    if width <= 0 or height <= 0:  # some tools write 0: trust the image header
        return image_size(image_path, source=rel)
    return height, width


def _mask_pngs(lay: _Layout, image_id: str) -> Tuple[Optional[str], Optional[str]]:
    obj = io.join(lay.obj_dir, image_id + ".png") if lay.obj_dir else None
    cls = io.join(lay.class_dir, image_id + ".png") if lay.class_dir else None
    return (obj if obj and io.isfile(obj) else None), (cls if cls and io.isfile(cls) else None)


def _read_xml_sample(stream, lay: _Layout, rel, image_id, index, include_difficult) -> Sample:
    ann = _parse_xml(lay, rel)
    filename = _text(ann, "filename", rel, required=False) or image_id + ".jpg"
    image_path = io.join(lay.root, "JPEGImages", filename)
    if not io.is_inside(image_path, io.join(lay.root, "JPEGImages")):
        raise _Skip(rel, "path_outside_root", f"<filename> {filename!r} escapes JPEGImages/ (refused)")
    if not io.isfile(image_path):
        raise _Skip(rel, "missing_image", f"image file not found: {image_path}")
    height, width = _xml_size(ann, rel, image_path)
    obj_png, class_png = _mask_pngs(lay, image_id)
    objects = ann.findall("object")
    if obj_png is not None:
        _note_extra_values(stream, rel, obj_png, len(objects), height, width)
    instances: List[Instance] = []
    for k, obj in enumerate(objects, start=1):
        inst = _xml_instance(stream, lay, rel, k, obj, (height, width), (obj_png, class_png), include_difficult)
        if inst is not None:
            instances.append(inst)
    return Sample(source_id=str(index), filename="JPEGImages/" + filename, height=height, width=width,
                  instances=tuple(instances), image_path=image_path, source=rel)


def _note_extra_values(stream, rel, obj_png, n_objects, height, width) -> None:
    import numpy as np

    try:
        values, _ = _mask_values(obj_png, height, width)
    except MaskError:
        return  # reported per instance when its mask is rasterised
    extra = sorted(v for v in np.unique(values).tolist() if n_objects < v < VOID)
    if extra:
        stream.note(rel, "voc_extra_mask_values", f"{io.basename(obj_png)} has object values {extra[:10]} beyond the "
                    f"{n_objects} <object> entries of the XML; those pixels belong to no instance")


def _bndbox(obj) -> Optional[Tuple[float, float, float, float]]:
    try:
        values = tuple(float(obj.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax"))
    except (TypeError, ValueError, OverflowError):
        return None
    return values if all(math.isfinite(v) for v in values) else None


def _xml_instance(stream, lay, rel, k, obj, size, pngs, include_difficult) -> Optional[Instance]:
    height, width = size
    label = (obj.findtext("name") or "").strip()

    def skip(kind, msg):
        stream.skip(rel, kind, f"object {k} '{label}': {msg}", "instance", label=label or None, index=k)

    if not label:
        skip("bad_annotation", "missing <name>")
        return None
    difficult = (obj.findtext("difficult") or "0").strip() in ("1", "true")
    if difficult and not include_difficult:
        skip("difficult", "marked difficult (use --include-difficult to keep it)")
        return None
    bnd = _bndbox(obj)
    if bnd is None:
        skip("bad_annotation", "<bndbox> needs finite numeric xmin, ymin, xmax, ymax")
        return None
    xmin, ymin, xmax, ymax = bnd
    box = (max(0.0, xmin - 1), max(0.0, ymin - 1), min(float(width), xmax), min(float(height), ymax))
    if box[2] <= box[0] or box[3] <= box[1]:
        skip("zero_area", f"box ({xmin}, {ymin}, {xmax}, {ymax}) is empty inside the {width}x{height} image")
        return None
    mask = None
    obj_png, class_png = pngs
    if obj_png is not None:
        mask = Bitmap(functools.partial(_object_mask, obj_png, k, class_png, lay.table.index(label), label,
                                        lay.table, height, width))
    return Instance(label=label, box=box, mask=mask, difficult=difficult)


def _find_image(lay: _Layout, image_id: str) -> Optional[str]:
    folder = io.join(lay.root, "JPEGImages")
    for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
        p = io.join(folder, image_id + ext)
        if io.isfile(p):
            return p
    return None


def _read_mask_sample(stream, lay: _Layout, rel, image_id, index) -> Sample:
    """Mask-only layout: one instance per SegmentationObject value (see module docstring)."""
    import numpy as np

    image_path = _find_image(lay, image_id)
    if image_path is None:
        raise _Skip(rel, "missing_image", f"no JPEGImages/{image_id}.* image for this mask")
    height, width = image_size(image_path, source=rel)
    obj_png, class_png = _mask_pngs(lay, image_id)
    if obj_png is None:
        raise _Skip(rel, "missing_annotation", "SegmentationObject PNG not found")
    try:
        objects, unknown = _mask_values(obj_png, height, width)
        classes, unknown_cls = _mask_values(class_png, height, width, lay.table.colours) if class_png else (None, 0)
    except MaskError as e:
        raise _Skip(rel, e.kind, str(e)) from None
    if unknown or unknown_cls:
        stream.note(rel, "voc_unknown_colours", f"{unknown + unknown_cls} pixels have colours in no colour table "
                                                "(read as background)")
    instances = []
    for k in (v for v in np.unique(objects).tolist() if 0 < v < VOID):
        inst = _mask_instance(stream, lay, rel, k, objects == k, classes)
        if inst is not None:
            instances.append(inst)
    return Sample(source_id=str(index), filename="JPEGImages/" + io.basename(image_path), height=height,
                  width=width, instances=tuple(instances), image_path=image_path, source=rel)


def _mask_instance(stream, lay: _Layout, rel, k: int, mask, classes) -> Optional[Instance]:
    import numpy as np

    if classes is None:
        stream.skip(rel, "missing_class", f"object {k}: no SegmentationClass PNG gives its class", "instance", index=k)
        return None
    values, counts = np.unique(classes[mask], return_counts=True)
    keep = (values > 0) & (values < VOID)
    if not keep.any():
        stream.skip(rel, "missing_class", f"object {k}: SegmentationClass is background or void under it",
                    "instance", index=k)
        return None
    value = int(values[keep][np.argmax(counts[keep])])
    label = lay.table.name(value)
    if label in ("_background_", "background", "__ignore__"):
        stream.skip(rel, "ignored_label", f"object {k}: class '{label}'", "instance", label=label, index=k)
        return None
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    y0, x0 = int(rows[0]), int(cols[0])
    patch = mask[y0:int(rows[-1]) + 1, x0:int(cols[-1]) + 1].astype(np.uint8)
    box = (float(x0), float(y0), float(cols[-1] + 1), float(rows[-1] + 1))
    return Instance(label=label, box=box, mask=Bitmap(patch, x0, y0))
