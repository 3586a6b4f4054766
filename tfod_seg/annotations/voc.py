"""Pascal VOC (2012 layout) → `Sample`s.

Layout under ``root``: ``Annotations/ID.xml``, ``JPEGImages/<filename>``, and for instance
masks ``SegmentationObject/ID.png`` (+ ``SegmentationClass/ID.png``) and
``ImageSets/Segmentation/{train,val,trainval}.txt``.

Coordinates: VOC ``bndbox`` values are 1-based inclusive pixel indices; ``xmin=1, xmax=10``
covers pixels 0..9, so the box becomes ``(xmin - 1, ymin - 1, xmax, ymax)`` in absolute pixel
edges.

Masks: in ``SegmentationObject/ID.png`` the value ``k`` marks the k-th ``<object>`` of the XML
(1-based, all objects counted, difficult or not), 0 is background and 255 the "void" border,
which belongs to no instance. When the 20 standard VOC class names are used, the class under
each instance in ``SegmentationClass/ID.png`` is checked against the XML name and a mismatch
is skipped and reported.

Which images: the ids in ``ImageSets/Segmentation/<image_set>.txt`` (default ``trainval``) when
that file exists; else the ids having a ``SegmentationObject`` PNG; else every XML (box-only:
their instances are then reported as having no mask). Objects marked ``difficult`` are skipped
and counted unless ``include_difficult``.
"""

from __future__ import annotations

import functools
import glob
import os
from typing import List, Optional

from tfod_seg.annotations.base import FormatReader, ReaderOptions
from tfod_seg.data.masks import MaskError
from tfod_seg.data.stream import SampleStream
from tfod_seg.data.types import Bitmap, Instance, Sample
from tfod_seg.errors import AnnotationError, UserError

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
VOID = 255


@functools.lru_cache(maxsize=4)
def _load_index_png(path: str):
    """A palette PNG as its raw indices (not RGB): SegmentationObject/Class values."""
    import numpy as np
    from PIL import Image

    img = Image.open(path)
    if img.mode not in ("P", "L"):
        img = img.convert("L")
    return np.asarray(img)


def _object_mask(obj_png: str, k: int, class_png: Optional[str], class_index: Optional[int], label: str):
    """The k-th object's mask; raises MaskError when SegmentationClass disagrees with the XML."""
    try:
        idx = _load_index_png(obj_png)
    except (OSError, ValueError) as e:
        raise MaskError("bad_mask_png", f"cannot read {obj_png}: {e}") from None
    mask = idx == k
    if class_png is not None and class_index is not None and mask.any():
        import numpy as np

        cls = _load_index_png(class_png)
        if cls.shape == idx.shape:
            values, counts = np.unique(cls[mask], return_counts=True)
            major = int(values[np.argmax(counts)])
            if major != class_index:
                got = VOC_CLASSES[major] if major < len(VOC_CLASSES) else str(major)
                raise MaskError("voc_class_mismatch", f"SegmentationClass marks object {k} as '{got}' "
                                                      f"but the XML says '{label}'")
    return mask


def read_voc(root, *, include_difficult: bool = False, image_set: Optional[str] = None,
             drop_empty: bool = False) -> SampleStream:
    """Stream `Sample`s from a VOC root (see module docstring)."""
    from lxml import etree  # noqa: F401  (fail early if missing)

    root = os.fspath(root)
    ann_dir = os.path.join(root, "Annotations")
    if not os.path.isdir(ann_dir):
        raise UserError(f"{root}: not a Pascal VOC root (no Annotations/ folder; expected e.g. VOCdevkit/VOC2012)")
    obj_dir = os.path.join(root, "SegmentationObject")
    set_file = os.path.join(root, "ImageSets", "Segmentation", f"{image_set or 'trainval'}.txt")
    stream = SampleStream(source=root)
    if os.path.isfile(set_file):
        with open(set_file, encoding="utf-8") as f:
            ids = [line.split()[0] for line in f if line.strip()]
        stream.note(os.path.relpath(set_file, root), "voc_image_set",
                    f"using the {len(ids)} ids listed in {os.path.relpath(set_file, root)}")
    elif image_set:
        raise UserError(f"{set_file}: image set file not found")
    elif os.path.isdir(obj_dir):
        ids = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(obj_dir, "*.png")))
        stream.note("SegmentationObject", "voc_image_set", f"using the {len(ids)} ids with a SegmentationObject PNG")
    else:
        ids = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ann_dir, "*.xml")))
    if not ids:
        raise UserError(f"{root}: no VOC annotations found")
    stream.total = len(ids)

    def gen(s: SampleStream):
        for index, image_id in enumerate(ids, start=1):
            rel = os.path.join("Annotations", image_id + ".xml")
            try:
                sample = _read_one(s, root, rel, image_id, index, include_difficult)
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


READER = FormatReader("voc", "Pascal VOC root (Annotations/ JPEGImages/ SegmentationObject/ SegmentationClass/)",
                      _open)


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


def _read_one(stream, root, rel, image_id, index, include_difficult) -> Sample:
    from lxml import etree

    xml_path = os.path.join(root, rel)
    try:
        tree = etree.parse(xml_path, etree.XMLParser(resolve_entities=False, no_network=True))
    except OSError:
        raise _Skip(rel, "missing_annotation", "annotation file not found") from None
    except etree.XMLSyntaxError as e:
        raise _Skip(rel, "malformed_xml", f"malformed XML at line {e.lineno}: {e.msg}") from None
    ann = tree.getroot()
    filename = _text(ann, "filename", rel, required=False) or image_id + ".jpg"
    image_path = os.path.join(root, "JPEGImages", filename)
    if not os.path.isfile(image_path):
        raise _Skip(rel, "missing_image", f"image file not found: {image_path}")
    try:
        width = int(float(_text(ann, "size/width", rel)))
        height = int(float(_text(ann, "size/height", rel)))
    except (_Skip, ValueError):
        from tfod_seg.data.images import image_size

        height, width = image_size(image_path, source=rel)
    if width <= 0 or height <= 0:  # some tools write 0: trust the image header
        from tfod_seg.data.images import image_size

        height, width = image_size(image_path, source=rel)
    obj_png = os.path.join(root, "SegmentationObject", image_id + ".png")
    class_png = os.path.join(root, "SegmentationClass", image_id + ".png")
    obj_png = obj_png if os.path.isfile(obj_png) else None
    class_png = class_png if os.path.isfile(class_png) else None

    instances: List[Instance] = []
    for k, obj in enumerate(ann.findall("object"), start=1):
        label = (obj.findtext("name") or "").strip()

        def skip(kind, msg):
            stream.skip(rel, kind, f"object {k} '{label}': {msg}", "instance", label=label or None, index=k)

        if not label:
            skip("bad_annotation", "missing <name>")
            continue
        difficult = (obj.findtext("difficult") or "0").strip() in ("1", "true")
        if difficult and not include_difficult:
            skip("difficult", "marked difficult (use --include-difficult to keep it)")
            continue
        try:
            xmin, ymin, xmax, ymax = (float(obj.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            skip("bad_annotation", "<bndbox> needs numeric xmin, ymin, xmax, ymax")
            continue
        box = (max(0.0, xmin - 1), max(0.0, ymin - 1), min(float(width), xmax), min(float(height), ymax))
        if box[2] <= box[0] or box[3] <= box[1]:
            skip("zero_area", f"box ({xmin}, {ymin}, {xmax}, {ymax}) is empty inside the {width}x{height} image")
            continue
        mask = None
        if obj_png is not None:
            cls_idx = VOC_CLASSES.index(label) if label in VOC_CLASSES else None
            mask = Bitmap(functools.partial(_object_mask, obj_png, k, class_png, cls_idx, label))
        instances.append(Instance(label=label, box=box, mask=mask, difficult=difficult))
    return Sample(source_id=str(index), filename=os.path.join("JPEGImages", filename), height=height, width=width,
                  instances=tuple(instances), image_path=image_path, source=rel)
