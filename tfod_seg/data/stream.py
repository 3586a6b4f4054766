"""A stream of `Sample`s that also records what its reader skipped, and why.

Readers are generators (a 100k-image dataset must stream), but nothing may be dropped
silently: every image or instance a reader leaves out is recorded on the stream with its
reason. `tfod_seg.records.convert.convert_dataset` merges these records into `report.json`
and, under ``strict=True``, fails on the first one.

A skip record is a plain dict (JSON-ready)::

    {"file": "ann/a.json", "level": "image" | "instance", "kind": "missing_image",
     "reason": "image file not found: images/a.jpg (from imagePath 'a.jpg')", ...}

``kind`` is a short fixed code used to count skips by reason; ``reason`` is the full message.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List, Optional, Sequence

from tfod_seg.data.types import Sample


def skip_record(file: Optional[str], kind: str, reason: str, level: str = "image", **extra) -> Dict:
    rec = {"file": None if file is None else str(file), "level": level, "kind": kind, "reason": reason}
    rec.update({k: v for k, v in extra.items() if v is not None})
    return rec


class SampleStream(Iterator[Sample]):
    """An iterator of `Sample` with skip accounting.

    Attributes:
        total: number of candidate images when the reader knows it up front (for progress
            bars and default shard counts), else ``None``.
        label_names: class names in label-map order when the format declares them up front
            (COCO categories), else ``None`` (ids are then given in order of first appearance).
        skipped: skip records (see module docstring), appended while iterating.
        notes: non-skip remarks (e.g. a COCO category id remapped), same dict shape.
    """

    def __init__(self, total: Optional[int] = None, label_names: Optional[Sequence[str]] = None,
                 source: Optional[str] = None):
        self.total = total
        self.label_names = list(label_names) if label_names is not None else None
        self.source = source
        self.skipped: List[Dict] = []
        self.notes: List[Dict] = []
        self._it: Optional[Iterator[Sample]] = None

    def attach(self, factory: Callable[["SampleStream"], Iterator[Sample]]) -> "SampleStream":
        self._it = factory(self)
        return self

    def skip(self, file, kind: str, reason: str, level: str = "image", **extra) -> None:
        self.skipped.append(skip_record(file, kind, reason, level, **extra))

    def note(self, file, kind: str, reason: str, **extra) -> None:
        self.notes.append(skip_record(file, kind, reason, level="note", **extra))

    def __iter__(self) -> "SampleStream":
        return self

    def __next__(self) -> Sample:
        if self._it is None:
            raise StopIteration
        return next(self._it)

    def __len__(self) -> int:
        if self.total is None:
            raise TypeError("this sample stream does not know its length")
        return self.total
