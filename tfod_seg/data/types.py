"""The one data model every annotation reader produces and every writer consumes.

Coordinate conventions (stated once, used everywhere in tfod-seg):

* `Instance.box` is ``(xmin, ymin, xmax, ymax)`` in **absolute pixels** of the upright
  image, with ``0 <= xmin < xmax <= width`` (COCO's ``[x, y, w, h]`` is converted by the COCO
  reader; TFOD's normalised ``[ymin, xmin, ymax, xmax]`` is produced only by the TFRecord
  writer).
* Polygon points are ``(x, y)`` absolute pixels, the COCO convention (pixel centres at
  ``i + 0.5`` are *not* assumed; pycocotools rasterises them).
* Masks are rasterised lazily, when a record is written: a reader never holds a full-image
  mask array unless the source itself is a bitmap.

Records validate themselves on construction and raise `AnnotationError` naming the source
file, so a reader can never hand a writer an instance with a negative box or a polygon of two
points.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Optional, Tuple, Union

from tfod_seg.errors import AnnotationError

if TYPE_CHECKING:  # NumPy is imported lazily so `tfod-seg --help` stays fast.
    import numpy as np

Box = Tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class Polygons:
    """One or more polygon parts of one instance, COCO style.

    ``parts`` holds flat ``[x0, y0, x1, y1, ...]`` coordinate tuples in absolute pixels; each
    part has at least 3 points. Several parts (an occluded object drawn in pieces) are one
    instance: their union.
    """

    parts: Tuple[Tuple[float, ...], ...]

    def __post_init__(self):
        if not self.parts:
            raise ValueError("Polygons needs at least one part")
        for part in self.parts:
            if len(part) % 2 or len(part) < 6:
                raise ValueError(
                    f"polygon part has {len(part) // 2} points, expected at least 3 (x, y) pairs"
                )


@dataclasses.dataclass(frozen=True)
class RLE:
    """A COCO run-length encoding of a full-image mask.

    ``counts`` is either the compressed string (``bytes`` or ``str``) or the uncompressed list
    of run lengths; ``size`` is ``(height, width)`` as in COCO's ``{"size": [h, w]}``.
    """

    counts: Union[bytes, str, Tuple[int, ...]]
    size: Tuple[int, int]


@dataclasses.dataclass(frozen=True, eq=False)
class Bitmap:
    """A binary mask patch placed at ``(x0, y0)`` (top-left, absolute pixels) in the image.

    ``array`` is a 2-D ``(h, w)`` array; any non-zero value is foreground. A full-image
    mask has ``x0 = y0 = 0`` and the image's shape. ``array`` may also be a zero-argument
    callable returning the array, so a reader can defer decoding (e.g. a VOC PNG) until write.
    """

    array: object
    x0: int = 0
    y0: int = 0

    def load(self) -> "np.ndarray":
        import numpy as np

        arr = self.array() if callable(self.array) else self.array
        arr = np.asarray(arr)
        if arr.ndim != 2:
            raise ValueError(f"bitmap mask must be 2-D, got shape {arr.shape}")
        return arr


MaskSource = Union[Polygons, RLE, Bitmap]


@dataclasses.dataclass(frozen=True)
class Instance:
    """One object: its class name, pixel box ``(xmin, ymin, xmax, ymax)``, optional mask source.

    ``box`` is in absolute pixels of the upright image (see module docstring). ``mask`` is
    ``None`` for box-only annotations (e.g. a VOC object without SegmentationObject PNG);
    writers then fill the box as the mask only if asked to, otherwise they count a skip.
    """

    label: str
    box: Box
    mask: Optional[MaskSource] = None
    iscrowd: bool = False
    area: Optional[float] = None
    difficult: bool = False

    def __post_init__(self):
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"instance label must be a non-empty string, got {self.label!r}")
        if len(self.box) != 4:
            raise ValueError(f"box must be (xmin, ymin, xmax, ymax), got {self.box!r}")
        xmin, ymin, xmax, ymax = (float(v) for v in self.box)
        if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
            raise ValueError(f"box has a non-finite coordinate: {self.box!r}")
        if not (xmax > xmin and ymax > ymin):
            raise ValueError(
                f"box (xmin, ymin, xmax, ymax)={tuple(self.box)!r} has zero or negative area"
            )
        object.__setattr__(self, "box", (xmin, ymin, xmax, ymax))


@dataclasses.dataclass(frozen=True)
class Sample:
    """One image and its instances.

    Exactly one of ``image_path`` (a file on disk) or ``image_bytes`` (encoded image, e.g.
    LabelMe's embedded ``imageData``) is set. ``height`` and ``width`` are the size of the
    upright image as the annotation declares it; the writer checks them against the decoded
    image and refuses a mismatch. ``source`` is the annotation file the sample came from, used
    in every error message. ``source_id`` is unique within a dataset (COCO image id, file stem).
    """

    source_id: str
    filename: str
    height: int
    width: int
    instances: Tuple[Instance, ...] = ()
    image_path: Optional[str] = None
    image_bytes: Optional[bytes] = None
    source: Optional[str] = None

    def __post_init__(self):
        where = self.source or self.filename
        if (self.image_path is None) == (self.image_bytes is None):
            raise AnnotationError(where, "a sample needs exactly one of image_path or image_bytes")
        for name in ("height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise AnnotationError(where, f"image {name} must be a positive integer, got {value!r}")
        object.__setattr__(self, "instances", tuple(self.instances))
        for inst in self.instances:
            if not isinstance(inst, Instance):
                raise AnnotationError(where, f"expected Instance, got {type(inst).__name__}")
            xmin, ymin, xmax, ymax = inst.box
            # Half a pixel of slack: annotation tools put points on pixel edges.
            if xmin < -0.5 or ymin < -0.5 or xmax > self.width + 0.5 or ymax > self.height + 0.5:
                raise AnnotationError(
                    where,
                    f"instance '{inst.label}' box (xmin, ymin, xmax, ymax)="
                    f"{tuple(round(v, 2) for v in inst.box)} lies outside the "
                    f"{self.width}x{self.height} image",
                )
