"""Read TFRecords back into plain NumPy examples (for inspection, evaluation, tests).

Reads any TFOD2-style detection/segmentation record, not only tfod-seg's: PNG masks or
numerical float masks, with or without ``image/object/class/text``. Boxes come back in the
TFOD convention, normalised ``[ymin, xmin, ymax, xmax]``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence, Union

from tfod_seg import io
from tfod_seg.data.images import decode_rgb, open_image
from tfod_seg.errors import UserError
from tfod_seg.records.example import example_pb2

if TYPE_CHECKING:
    import numpy as np


def expand_patterns(patterns: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]) -> List[str]:
    """Glob patterns (or plain paths, or a comma-separated string) → sorted unique file list.

    A directory stands for ``DIR/*.tfrecord``. Paths may be URLs. Raises `UserError` naming
    the first pattern that matches nothing.
    """
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [p for p in os.fspath(patterns).split(",") if p.strip()]
    files = set()
    for pattern in patterns:
        pattern = io.check_path(os.fspath(pattern).strip(), "record pattern")
        if not io.is_url(pattern):
            pattern = os.path.expanduser(pattern)
        is_dir = io.isdir(pattern)
        if is_dir:
            matched = [m for m in io.listdir(pattern) if m.endswith(".tfrecord")]
            matched = [io.join(pattern, m) for m in matched if io.isfile(io.join(pattern, m))]
        else:
            matched = [m for m in io.glob(pattern) if io.isfile(m)]
        if not matched:
            where = "directory has no *.tfrecord files" if is_dir else "no file matches"
            raise UserError(f"{pattern}: {where} (expected TFRecord files, e.g. 'out/train-*.tfrecord')")
        files.update(matched)
    return sorted(files)


@dataclasses.dataclass
class RecordExample:
    """One decoded example. ``boxes`` are normalised ``[ymin, xmin, ymax, xmax]`` float32 (N, 4);
    ``masks`` uint8 (N, H, W) of 0/1 (empty (0, H, W) when the record has no masks)."""

    path: str
    filename: str
    source_id: str
    height: int
    width: int
    encoded: bytes
    image_format: str
    boxes: "np.ndarray"
    classes: "np.ndarray"
    class_texts: List[str]
    is_crowd: "np.ndarray"
    area: "np.ndarray"
    masks: "np.ndarray"
    index: int = 0  # position within its file
    raw_masks: Optional[list] = None  # mask values as stored (PNG bytes or floats), for checks

    def image(self) -> "np.ndarray":
        """The image as uint8 ``(H, W, 3)`` RGB (no EXIF handling: records are stored upright)."""
        return decode_rgb(self.encoded, source=f"{self.path}#{self.index}", apply_exif=False)


def decode_png_mask(data: bytes, where: str) -> "np.ndarray":
    """A stored instance-mask PNG → 2-D array (values as stored); `UserError` naming ``where``
    when it is not a readable PNG or is over the pixel limit."""
    import numpy as np

    try:
        img = open_image(data, where)
        img.load()
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{where}: instance mask is not a readable PNG ({e})") from None
    arr = np.asarray(img)
    if arr.ndim == 3:  # a multi-channel mask PNG: first channel (inspect reports it)
        arr = arr[..., 0]
    return arr


def parse_example(serialized: bytes, path: str = "", index: int = 0, decode_masks: bool = True) -> RecordExample:
    """A serialized ``tf.train.Example`` → `RecordExample`.

    ``masks`` are binarised to 0/1 (PNG values > 0, as TFOD2's decoder does; numerical values
    >= 0.5); ``raw_masks`` keeps the stored values so `inspect` can check they were binary.
    """
    import numpy as np

    where = f"{path}#{index}"
    try:
        ex = example_pb2().Example.FromString(serialized)
    except Exception as e:  # google.protobuf.message.DecodeError
        raise UserError(f"{path}: record {index} is not a tf.train.Example ({e})") from None
    f = ex.features.feature

    def b(key, default=b""):
        return f[key].bytes_list.value[0] if key in f and f[key].bytes_list.value else default

    def i(key, default=0):
        return int(f[key].int64_list.value[0]) if key in f and f[key].int64_list.value else default

    def fl(key):
        return np.asarray(f[key].float_list.value, np.float32) if key in f else np.zeros(0, np.float32)

    height, width = i("image/height"), i("image/width")
    if height < 0 or width < 0 or height * width > 2 ** 31:
        raise UserError(f"{where}: image/height x image/width = {height}x{width} is not a valid image size")
    ymin, xmin = fl("image/object/bbox/ymin"), fl("image/object/bbox/xmin")
    ymax, xmax = fl("image/object/bbox/ymax"), fl("image/object/bbox/xmax")
    n = len(xmin)
    if not len(ymin) == len(xmax) == len(ymax) == n:
        raise UserError(f"{where}: image/object/bbox/{{xmin,ymin,xmax,ymax}} have different lengths "
                        f"({n}, {len(ymin)}, {len(xmax)}, {len(ymax)})")
    boxes = np.stack([ymin, xmin, ymax, xmax], axis=-1).astype(np.float32) if n else np.zeros((0, 4), np.float32)
    classes = np.asarray(f["image/object/class/label"].int64_list.value if "image/object/class/label" in f else [],
                         np.int64)
    texts = [t.decode("utf-8", "replace") for t in f["image/object/class/text"].bytes_list.value] \
        if "image/object/class/text" in f else []
    crowd = np.asarray(f["image/object/is_crowd"].int64_list.value if "image/object/is_crowd" in f else [0] * n,
                       np.int64).astype(bool)
    area = fl("image/object/area")
    raw_masks: list = []
    masks = np.zeros((0, height, width), np.uint8)
    if "image/object/mask" in f:
        feat = f["image/object/mask"]
        if feat.HasField("bytes_list"):
            raw_masks = list(feat.bytes_list.value)
            if decode_masks and raw_masks:
                masks = (np.stack([decode_png_mask(m, where) for m in raw_masks]) > 0).astype(np.uint8)
        elif feat.HasField("float_list"):
            vals = np.asarray(feat.float_list.value, np.float32)
            raw_masks = [vals]
            if vals.size:
                if height * width == 0 or vals.size % (height * width):
                    raise UserError(f"{where}: numerical mask list has {vals.size} values, not a multiple of "
                                    f"height*width={height * width}")
                masks = (vals.reshape(-1, height, width) >= 0.5).astype(np.uint8)
    return RecordExample(
        path=path, filename=b("image/filename").decode("utf-8", "replace"),
        source_id=b("image/source_id").decode("utf-8", "replace"), height=height, width=width,
        encoded=b("image/encoded"), image_format=b("image/format").decode("utf-8", "replace"),
        boxes=boxes, classes=classes, class_texts=texts, is_crowd=crowd, area=area, masks=masks,
        index=index, raw_masks=raw_masks)


def iter_raw_records(patterns) -> Iterator[tuple]:
    """Yield ``(path, index, serialized_bytes)`` for every record in the matching files.

    Files are read with ``tf.data.TFRecordDataset``, which verifies the length and data
    checksums; a truncated or corrupt file raises `UserError` naming the file and the index
    of the first unreadable record.
    """
    import tensorflow as tf

    for path in expand_patterns(patterns):
        idx = framed = 0
        try:
            for rec in tf.data.TFRecordDataset(path).as_numpy_iterator():
                yield path, idx, rec
                idx += 1
                framed += len(rec) + 16  # length, its CRC, data, data CRC
            extra = io.size(path) - framed
            if extra:  # TensorFlow stops quietly at a partial header: a cut file or not a TFRecord
                raise UserError(f"{path}: record {idx} cannot be read: not a TFRecord file, truncated or corrupt "
                                f"({extra} bytes after the last complete record; {idx} records before it were read)")
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            detail = e.message.splitlines()[0] if e.message else type(e).__name__
            raise UserError(f"{path}: record {idx} cannot be read: not a TFRecord file, truncated or corrupt "
                            f"({detail}; {idx} records before it were read)") from None
        except tf.errors.OpError as e:  # permission denied, vanished file, ...
            detail = e.message.splitlines()[0] if e.message else type(e).__name__
            raise UserError(f"{path}: cannot read the TFRecord file ({detail})") from None


def iter_records(patterns) -> Iterator[RecordExample]:
    """Yield a `RecordExample` for every record in the files matching ``patterns``, in file order."""
    for path, idx, rec in iter_raw_records(patterns):
        yield parse_example(rec, path, idx)
