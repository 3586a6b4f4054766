"""Annotation readers, one module per source format, found by name in `READERS`.

Every reader implements `FormatReader` (``open(input_path, ReaderOptions) -> SampleStream``).
The CLI (`convert`, `labelmap`, `visualize`) resolves ``--format NAME`` here once.
"""

from __future__ import annotations

from typing import Dict, List

from tfod_seg.annotations import coco, labelme, voc
from tfod_seg.annotations.base import FormatReader, ReaderOptions
from tfod_seg.data.stream import SampleStream
from tfod_seg.errors import UserError

READERS: Dict[str, FormatReader] = {r.name: r for r in (labelme.READER, coco.READER, voc.READER)}


def reader_names() -> List[str]:
    return list(READERS)


def get_reader(name: str) -> FormatReader:
    try:
        return READERS[name]
    except KeyError:
        raise UserError(f"unknown annotation format {name!r}; expected one of: {', '.join(READERS)}") from None


def open_reader(name: str, input_path, **options) -> SampleStream:
    """``READERS[name].open(input_path, ReaderOptions(**options))``."""
    return get_reader(name).open(input_path, ReaderOptions(**options))


__all__ = ["READERS", "FormatReader", "ReaderOptions", "reader_names", "get_reader", "open_reader"]
