"""`Sample` → serialized `tf.train.Example` with the TFOD2 feature keys.

Keys written (the ones TFOD2's and Model Garden's decoders read)::

    image/encoded, image/format ('jpeg'|'png'), image/height, image/width, image/filename,
    image/source_id, image/key/sha256,
    image/object/bbox/{xmin,ymin,xmax,ymax}   normalised to [0, 1] (TFOD convention)
    image/object/class/label (int, label-map id 1..N), image/object/class/text,
    image/object/is_crowd, image/object/area (pixels), image/object/mask

``image/object/mask`` holds, per instance, either one single-channel full-image PNG with
values 0/1 (``mask_type="png"``, TFOD2's ``PNG_MASKS``, the default) or, with
``mask_type="numerical"`` (TFOD2's ``NUMERICAL_MASKS``), all masks flattened into one float
list of length N*H*W.

Masks are rasterised here, at write time, by `tfod_seg.data.masks`: polygons and RLE through
pycocotools (the same calls as Model Garden's ``create_coco_tf_record``, so outputs are
comparable pixel for pixel), bitmaps placed at their offset, and PNG-encoded with OpenCV. `build_example` (run in worker
processes) needs no TensorFlow: it returns the features as plain values; `make_example` /
`serialize_example` turn them into a ``tf.train.Example`` with
``SerializeToString(deterministic=True)``, in the process that writes the shards.

The message classes are TensorFlow Datasets' copy of TensorFlow's
``tensorflow/core/example/{example,feature}.proto`` (``tensorflow_datasets.proto.tf_example_pb2``,
copied "in order not to import all the TensorFlow library when we only need these two protos";
tensorflow-datasets is a dependency of tf-models-official): same messages and field numbers,
so the same bytes as TensorFlow's ``example_pb2`` (tests/records/test_tfrecord_file.py checks
it), and converting imports no TensorFlow (5.4 s on a 2-core machine; this import 0.3 s).
TensorBoard's ``compat/proto`` has no Example.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from tfod_seg import io
from tfod_seg.data.images import EncodedImage, check_size, encode_for_record, read_bytes
from tfod_seg.data.masks import MaskError, encode_mask_png_patch, rasterize_patch
from tfod_seg.data.stream import skip_record
from tfod_seg.data.types import Sample
from tfod_seg.errors import AnnotationError

if TYPE_CHECKING:
    import numpy as np

MASK_TYPES = ("png", "numerical")
# The package holding `example_pb2`'s module (importable in a background thread).
EXAMPLE_PROTO_PACKAGE = "tensorflow_datasets.proto"


# ---------------------------------------------------------------------------------------
# Features: plain, picklable values in worker processes; tf.train.Example in the writer
# ---------------------------------------------------------------------------------------
def bytes_feature(values: Sequence[bytes]) -> Tuple[str, list]:
    return ("bytes", list(values))


def int64_feature(values) -> Tuple[str, list]:
    return ("int64", [int(v) for v in values])


def float_feature(values) -> Tuple[str, list]:
    import numpy as np

    return ("float", np.asarray(values, np.float32).reshape(-1).tolist())


def example_pb2():
    """The module with ``Example`` (tf.train.Example): TensorFlow Datasets' copy of TensorFlow's
    proto, imported without TensorFlow (see the module docstring)."""
    from tensorflow_datasets.proto import tf_example_pb2

    return tf_example_pb2


def make_example(features: Dict[str, Tuple[str, list]]):
    """``{key: (kind, values)}`` (from `bytes_feature`, `int64_feature`, `float_feature`) →
    ``tf.train.Example`` (`example_pb2`: no TensorFlow import). Keys are added in
    sorted order and an empty list still sets its kind (``int64_list {}``), as TFOD2's and
    Model Garden's decoders expect for images without objects."""
    example = example_pb2().Example()
    fmap = example.features.feature
    for key in sorted(features):
        kind, values = features[key]
        lst = getattr(fmap[key], kind + "_list")
        lst.SetInParent()
        lst.value.extend(values)
    return example


def serialize_example(features: Dict[str, Tuple[str, list]]) -> bytes:
    """``{key: (kind, values)}`` → serialized ``tf.train.Example`` (deterministic bytes)."""
    return make_example(features).SerializeToString(deterministic=True)


# ---------------------------------------------------------------------------------------
# Sample → Example
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class EncodedExample:
    """Result of encoding one sample: the Example's features as plain values (``None`` if the
    image was skipped; picklable, no TensorFlow needed to build them), the label ids written
    (one per kept instance), and skip records for what was left out.

    ``image_file`` is set by `detach_image`: ``image/encoded`` is then left out of
    ``features`` and is the unchanged content of that local file (`attach_image` reads it back).
    """

    features: Optional[Dict[str, Tuple[str, list]]]
    classes: List[int]
    skipped: List[dict]
    reencoded: Optional[str] = None
    image_file: Optional[str] = None

    @property
    def data(self) -> Optional[bytes]:
        """The serialized ``tf.train.Example``, or ``None``."""
        return None if self.features is None else serialize_example(attach_image(self))

    @property
    def nbytes(self) -> int:
        """Approximate size of the encoded image and masks (for bounding buffers)."""
        if self.features is None:
            return 0
        return sum(len(v) for kind, vals in self.features.values() if kind == "bytes" for v in vals)


def detach_image(result: EncodedExample, sample: Sample) -> EncodedExample:
    """``result`` without the image bytes when they are the unchanged bytes of a local file.

    A worker process encoding for a writer on the same machine returns this instead of the
    bytes: the writer reads the file again (`attach_image`, from the page cache) instead of
    receiving a copy through a pipe and holding it while it waits. Re-encoded images, images
    embedded in the annotation and files behind a URL (a second download) keep their bytes.
    """
    path = sample.image_path
    if (result.features is None or result.reencoded is not None or result.image_file is not None
            or sample.image_bytes is not None or not path or io.is_url(path)):
        return result
    features = dict(result.features)
    del features["image/encoded"]
    return dataclasses.replace(result, features=features, image_file=os.fspath(path))


def attach_image(result: EncodedExample) -> Dict[str, Tuple[str, list]]:
    """The features of ``result`` with ``image/encoded`` read back from ``result.image_file``
    (see `detach_image`); raises `AnnotationError` when the file no longer holds the bytes that
    were checked and hashed into ``image/key/sha256``."""
    if result.image_file is None:
        return result.features
    data = read_bytes(result.image_file)
    expected = result.features["image/key/sha256"][1][0]
    if hashlib.sha256(data).hexdigest().encode() != expected:
        raise AnnotationError(result.image_file, "image file changed while it was being converted "
                                                 "(its bytes differ from the ones checked); run the conversion again")
    return dict(result.features, **{"image/encoded": bytes_feature([data])})


def load_image(sample: Sample) -> EncodedImage:
    where = sample.source or sample.filename
    data = sample.image_bytes if sample.image_bytes is not None else read_bytes(sample.image_path, where)
    return encode_for_record(data, where)


def build_example(sample: Sample, class_ids: Sequence[int], class_names: Sequence[str], *,
                  mask_type: str = "png", source_id: Optional[str] = None) -> EncodedExample:
    """Encode ``sample``; ``class_ids[i]``/``class_names[i]`` label ``sample.instances[i]``.

    Image-level problems (missing, corrupt or truncated image; size differing from the
    annotation) give ``data=None`` and one image skip record. Instances whose mask cannot be
    rasterised or is empty are left out with an instance skip record.
    """
    import numpy as np

    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
    where = sample.source or sample.filename
    try:
        image = load_image(sample)
        check_size(image, sample.height, sample.width, where)
    except AnnotationError as e:
        msg = str(e)
        if e.path and msg.startswith(e.path + ": "):
            msg = msg[len(e.path) + 2:]
        kind = ("missing_image" if "not found" in msg else
                "image_size_mismatch" if "size differs" in msg else
                "too_many_pixels" if "--max-pixels" in msg else "bad_image")
        msg += f" [image {sample.image_path or 'embedded in the annotation'}]"
        return EncodedExample(None, [], [skip_record(where, kind, msg, "image", filename=sample.filename)])
    h, w = image.height, image.width
    skipped: List[dict] = []
    boxes, labels, texts, crowd, areas, masks = [], [], [], [], [], []
    for i, inst in enumerate(sample.instances):
        try:
            m = rasterize_patch(inst.mask, h, w)
        except MaskError as e:
            skipped.append(skip_record(where, e.kind, f"instance {i} '{inst.label}': {e}", "instance",
                                       label=inst.label, index=i))
            continue
        pixels = int(np.count_nonzero(m[0]))
        if pixels == 0:
            skipped.append(skip_record(where, "empty_mask",
                                       f"instance {i} '{inst.label}': mask is empty after rasterising "
                                       f"(zero-area shape)", "instance", label=inst.label, index=i))
            continue
        xmin, ymin, xmax, ymax = inst.box
        boxes.append((min(max(xmin / w, 0.0), 1.0), min(max(ymin / h, 0.0), 1.0),
                      min(max(xmax / w, 0.0), 1.0), min(max(ymax / h, 0.0), 1.0)))
        labels.append(int(class_ids[i]))
        texts.append(class_names[i].encode("utf-8"))
        crowd.append(1 if inst.iscrowd else 0)
        areas.append(float(inst.area) if inst.area is not None else float(pixels))
        masks.append(m)
    box_arr = np.asarray(boxes, np.float32).reshape(-1, 4)
    feats = {
        "image/encoded": bytes_feature([image.encoded]),
        "image/format": bytes_feature([image.format.encode()]),
        "image/height": int64_feature([h]),
        "image/width": int64_feature([w]),
        "image/filename": bytes_feature([sample.filename.encode("utf-8")]),
        "image/source_id": bytes_feature([str(source_id if source_id is not None else sample.source_id).encode("utf-8")]),
        "image/key/sha256": bytes_feature([hashlib.sha256(image.encoded).hexdigest().encode()]),
        "image/object/bbox/xmin": float_feature(box_arr[:, 0]),
        "image/object/bbox/ymin": float_feature(box_arr[:, 1]),
        "image/object/bbox/xmax": float_feature(box_arr[:, 2]),
        "image/object/bbox/ymax": float_feature(box_arr[:, 3]),
        "image/object/class/label": int64_feature(labels),
        "image/object/class/text": bytes_feature(texts),
        "image/object/is_crowd": int64_feature(crowd),
        "image/object/area": float_feature(areas),
    }
    if mask_type == "png":
        feats["image/object/mask"] = bytes_feature([encode_mask_png_patch(p, x0, y0, h, w) for p, x0, y0 in masks])
    else:
        full = np.zeros((len(masks), h, w), np.float32)
        for k, (p, x0, y0) in enumerate(masks):
            full[k, y0:y0 + p.shape[0], x0:x0 + p.shape[1]] = p
        flat = full.reshape(-1)
        feats["image/object/mask"] = float_feature(flat)
    return EncodedExample(feats, labels, skipped, image.reencoded)
