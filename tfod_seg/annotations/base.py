"""The one interface every annotation reader implements.

A reader turns one user input (a folder, a JSON file, a dataset root) into a `SampleStream`
of `Sample`s (see `tfod_seg.data`), recording what it skipped and why. Readers are found by
format name in `tfod_seg.annotations.READERS`; adding a format is one module that defines a
``READER = FormatReader(...)`` plus one line in that table.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable, Optional

from tfod_seg import io
from tfod_seg.data.stream import SampleStream
from tfod_seg.errors import AnnotationError, UserError


@dataclasses.dataclass(frozen=True)
class ReaderOptions:
    """Options a reader may use; each reader ignores the ones that do not apply to its format.

    ``image_dir``: COCO, the folder ``file_name`` is relative to (default: the JSON's folder).
    ``drop_empty``: skip (and count) images without instances instead of keeping negatives.
    ``include_difficult``: VOC, keep objects marked difficult.
    ``allow_outside_root``: LabelMe ``imagePath`` / COCO ``file_name`` may point outside the
    dataset folder (refused by default).
    ``image_set``: VOC, the ``ImageSets/Segmentation/<name>.txt`` list to read.
    """

    image_dir: Optional[str] = None
    drop_empty: bool = False
    include_difficult: bool = False
    allow_outside_root: bool = False
    image_set: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class FormatReader:
    """A named reader: ``open(input_path, options)`` → `SampleStream`.

    ``input_help`` says what INPUT is for this format (shown by the CLI).
    """

    name: str
    input_help: str
    open_fn: Callable[[str, ReaderOptions], SampleStream]

    def open(self, input_path: str, options: Optional[ReaderOptions] = None) -> SampleStream:
        return self.open_fn(input_path, options or ReaderOptions())


class _Unreadable(UserError):
    pass


def read_json_file(path: str, what: str):
    """Parse a UTF-8 JSON annotation file (a BOM is allowed); problems raise `AnnotationError`
    naming the file: not found, not UTF-8, malformed (line and column), nested too deeply."""
    try:
        data = io.read_bytes(path, _Unreadable, what)
    except _Unreadable as e:
        msg = str(e)
        raise AnnotationError(path, msg[len(path) + 2:] if msg.startswith(path + ": ") else msg) from None
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise AnnotationError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(path, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise AnnotationError(path, "JSON nested too deeply") from None
