"""TFRecord file framing without TensorFlow.

A TFRecord file is a sequence of records, each::

    uint64 length (little endian)
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

with ``masked_crc32c(x) = ((c >> 15) | (c << 17)) + 0xa282ead8`` (mod 2**32), ``c`` the
CRC-32C (Castagnoli) of ``x``. Writing it here keeps `tfod-seg convert` free of the
TensorFlow import (seconds of start-up); tests read the files back with
``tf.data.TFRecordDataset``, which verifies both checksums.

CRC-32C is computed with NumPy: the data is split into lanes of 64 bytes whose CRCs advance
together (one vectorised table step per byte position), then the lane CRCs are combined
pairwise with precomputed "append 64 * 2**k zero bytes" linear maps. For reflected CRCs
the initial value 0xFFFFFFFF is folded into the first four data bytes, so front zero padding
does not change the result.
"""

from __future__ import annotations

import functools
import struct
from typing import List

POLY = 0x82F63B78  # CRC-32C, reflected
LANE = 64
_SMALL = 512  # below this, a plain Python loop is faster than NumPy set-up


@functools.lru_cache(maxsize=1)
def _table() -> List[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (POLY if c & 1 else 0)
        table.append(c)
    return table


def _crc_py(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    t = _table()
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def _apply(images: List[int], c: int) -> int:
    out = 0
    bit = 0
    while c:
        if c & 1:
            out ^= images[bit]
        c >>= 1
        bit += 1
    return out


@functools.lru_cache(maxsize=None)
def _shift_images(level: int) -> List[int]:
    """Images of the 32 basis states under "append LANE * 2**level zero bytes"."""
    if level == 0:
        t = _table()
        images = []
        for bit in range(32):
            c = 1 << bit
            for _ in range(LANE):
                c = t[c & 0xFF] ^ (c >> 8)
            images.append(c)
        return images
    prev = _shift_images(level - 1)
    return [_apply(prev, _apply(prev, 1 << bit)) for bit in range(32)]


@functools.lru_cache(maxsize=None)
def _shift_tables(level: int):
    import numpy as np

    images = np.asarray(_shift_images(level), np.uint32)
    v = np.arange(256, dtype=np.uint32)
    tables = []
    for k in range(4):
        t = np.zeros(256, np.uint32)
        for bit in range(8):
            t ^= np.where(v & (1 << bit), images[8 * k + bit], np.uint32(0)).astype(np.uint32)
        tables.append(t)
    return tables


@functools.lru_cache(maxsize=1)
def _np_table():
    import numpy as np

    return np.asarray(_table(), np.uint32)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, as TFRecord uses it."""
    n = len(data)
    if n < _SMALL:
        return _crc_py(data) ^ 0xFFFFFFFF
    import numpy as np

    lanes = -(-n // LANE)
    k = 1 << (lanes - 1).bit_length()  # lanes rounded up to a power of two
    buf = np.zeros(k * LANE, np.uint8)
    buf[k * LANE - n:] = np.frombuffer(data, np.uint8)
    head = k * LANE - n
    buf[head:head + 4] ^= np.uint8(0xFF)  # fold the initial 0xFFFFFFFF into the first 4 bytes
    cols = buf.reshape(k, LANE).T.copy()  # cols[t] = byte t of every lane (contiguous)
    table = _np_table()
    crc = np.zeros(k, np.uint32)
    for t in range(LANE):
        crc = table[(crc ^ cols[t]) & 0xFF] ^ (crc >> 8)
    level = 0
    while len(crc) > 1:
        t0, t1, t2, t3 = _shift_tables(level)
        left, right = crc[0::2], crc[1::2]
        crc = (t0[left & 0xFF] ^ t1[(left >> 8) & 0xFF] ^ t2[(left >> 16) & 0xFF] ^ t3[left >> 24]) ^ right
        level += 1
    return int(crc[0]) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One record with its TFRecord header and footer."""
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", masked_crc32c(length)) + record + struct.pack("<I", masked_crc32c(record))


class TFRecordFile:
    """Minimal TFRecord writer (uncompressed), API like ``tf.io.TFRecordWriter``."""

    def __init__(self, path: str):
        self._f = open(path, "wb")

    def write(self, record: bytes) -> None:
        self._f.write(frame(record))

    def write_framed(self, framed: bytes) -> None:
        self._f.write(framed)

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
