"""``tf.train.Example`` and TFRecord files without importing TensorFlow.

Importing TensorFlow costs seconds of wall time (up to tens of seconds on a busy machine) for
two things conversion needs from it: the ``Example`` protobuf class and ``TFRecordWriter``.
Neither needs TensorFlow itself:

* `Example` is the message class of TensorFlow's ``example.proto`` / ``feature.proto``
  (package ``tensorflow``), built here with the protobuf library from the same field
  definitions, in a private descriptor pool (so it never clashes with TensorFlow's own classes
  when both are loaded). Serialized with ``deterministic=True`` it gives the same bytes as
  ``tf.train.Example``; `tests/records/test_tfrecord.py` checks that on every feature kind.
* `RecordFile` writes the TFRecord framing (length, masked CRC-32C of the length, data,
  masked CRC-32C of the data; the format of ``tensorflow/core/lib/io/record_writer.cc``) to a
  local file, with CRC-32C from the ``google-crc32c`` package (C implementation). When that
  package is missing, `open_record_file` falls back to ``tf.io.TFRecordWriter``, as it does
  for URLs (``gs://``, ``ram://``: TensorFlow's filesystems). `read_records` reads the same
  framing back from any open binary file.
"""

from __future__ import annotations

import functools
import struct
from typing import Optional

from tfod_seg import io

_MASK_DELTA = 0xA282EAD8


@functools.lru_cache(maxsize=None)
def _classes():
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(name="tensorflow/core/example/example.proto", package="tensorflow",
                                           syntax="proto3")

    def message(name, *fields):
        msg = f.message_type.add(name=name)
        for fname, number, ftype, label, type_name, oneof in fields:
            field = msg.field.add(name=fname, number=number, type=ftype, label=label, json_name=_camel(fname))
            if type_name:
                field.type_name = type_name
            if oneof is not None:
                field.oneof_index = oneof
        return msg

    rep, opt = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    message("BytesList", ("value", 1, F.TYPE_BYTES, rep, None, None))
    message("FloatList", ("value", 1, F.TYPE_FLOAT, rep, None, None)).field[0].options.packed = True
    message("Int64List", ("value", 1, F.TYPE_INT64, rep, None, None)).field[0].options.packed = True
    feature = message("Feature", ("bytes_list", 1, F.TYPE_MESSAGE, opt, ".tensorflow.BytesList", 0),
                      ("float_list", 2, F.TYPE_MESSAGE, opt, ".tensorflow.FloatList", 0),
                      ("int64_list", 3, F.TYPE_MESSAGE, opt, ".tensorflow.Int64List", 0))
    feature.oneof_decl.add(name="kind")
    features = message("Features", ("feature", 1, F.TYPE_MESSAGE, rep, ".tensorflow.Features.FeatureEntry", None))
    entry = features.nested_type.add(name="FeatureEntry")
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=opt, json_name="key")
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, label=opt, type_name=".tensorflow.Feature",
                    json_name="value")
    entry.options.map_entry = True
    message("Example", ("features", 1, F.TYPE_MESSAGE, opt, ".tensorflow.Features", None))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def Example():  # noqa: N802 - stands for the message class
    """A new, empty ``tensorflow.Example`` message (same schema and bytes as ``tf.train.Example``)."""
    return _classes()()


def _crc32c():
    try:
        import google_crc32c
    except ImportError:
        return None
    return google_crc32c.value


def masked_crc32c(data: bytes, crc=None) -> int:
    crc = (crc or _crc32c())(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


class RecordFile:
    """Append records to a TFRecord file (no compression), like ``tf.io.TFRecordWriter``."""

    def __init__(self, path: str, crc):
        self._crc = crc
        self._f = io.open_file(path, "wb")

    def write(self, record: bytes) -> None:
        header = struct.pack("<Q", len(record))
        self._f.write(b"".join((header, struct.pack("<I", masked_crc32c(header, self._crc)), record,
                                struct.pack("<I", masked_crc32c(record, self._crc)))))

    def close(self) -> None:
        self._f.close()


def read_records(f, where: str = "TFRecord file"):
    """Yield the records of an open binary TFRecord file (uncompressed), checking both CRCs
    when ``google-crc32c`` is installed; a truncated or corrupt file raises ``ValueError``."""
    crc = _crc32c()
    index = 0
    while True:
        header = f.read(12)
        if not header:
            return
        if len(header) < 12:
            raise ValueError(f"{where}: record {index}: truncated length header")
        (length,), (header_crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
        if crc is not None and masked_crc32c(header[:8], crc) != header_crc:
            raise ValueError(f"{where}: record {index}: corrupt length (CRC mismatch)")
        data, footer = f.read(length), f.read(4)
        if len(data) < length or len(footer) < 4:
            raise ValueError(f"{where}: record {index}: truncated data")
        if crc is not None and masked_crc32c(data, crc) != struct.unpack("<I", footer)[0]:
            raise ValueError(f"{where}: record {index}: corrupt data (CRC mismatch)")
        yield data
        index += 1


def native_writer_available(path: str) -> bool:
    """True when `open_record_file` writes ``path`` without TensorFlow."""
    return not io.is_url(path) and _crc32c() is not None


def open_record_file(path: str):
    """A TFRecord writer for ``path`` (``write(bytes)``, ``close()``): `RecordFile` for local
    paths when ``google-crc32c`` is installed, else ``tf.io.TFRecordWriter``."""
    crc: Optional[object] = None if io.is_url(path) else _crc32c()
    if crc is not None:
        return RecordFile(path, crc)
    import tensorflow as tf

    return tf.io.TFRecordWriter(path)
