"""What `tfod-seg convert` writes beside the records, found from the records' paths.

`tfod-seg convert --out DIR` writes ``DIR/*.tfrecord-*``, ``DIR/report.json`` (the conversion
report: counts, mask type, the ``label_map`` it wrote) and ``DIR/label_map.pbtxt``. Later stages
know only a record pattern (a config's ``input_path``, a ``--train`` flag), so this module is the
one place that goes from patterns to those files. A pattern may be a glob
(``out/train.tfrecord-*``), a folder (``out/``), a single file, a comma-separated list of these,
or a URL (``gs://bucket/out/train-*``); relative patterns are taken relative to ``base`` (e.g.
the folder of the config that names them). All access goes through `tfod_seg.io`.
"""

from __future__ import annotations

import os
from typing import Iterator, List, Optional, Sequence, Union

from tfod_seg import io
from tfod_seg.errors import ConfigError

REPORT_NAME = "report.json"
LABEL_MAP_NAME = "label_map.pbtxt"

Patterns = Union[None, str, os.PathLike, Sequence[Union[str, os.PathLike]]]


def split_patterns(patterns: Patterns, base: Optional[str] = None) -> List[str]:
    """``patterns`` (one string with commas, or a list of them) as a flat list of paths,
    each made absolute (relative to ``base`` when given); empty items dropped. URLs unchanged."""
    if patterns is None:
        return []
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    out = []
    for item in patterns:
        for p in os.fspath(item).split(","):
            p = p.strip()
            if p:
                out.append(io.resolve(p, base))
    return out


def _folders(pattern: str) -> Iterator[str]:
    """The folders that hold the records ``pattern`` names (sorted, each once)."""
    if io.has_magic(pattern):
        found = sorted({io.dirname(m) for m in io.glob(pattern)})
        yield from found or [io.dirname(pattern)]
    elif io.isdir(pattern):
        yield pattern.rstrip("/") if io.is_url(pattern) else pattern
    else:
        yield io.dirname(pattern)


def record_folders(patterns: Patterns, base: Optional[str] = None) -> List[str]:
    """Folders holding the records of ``patterns``, in pattern order, without repeats."""
    seen: List[str] = []
    for pattern in split_patterns(patterns, base):
        for d in _folders(pattern):
            if d and d not in seen:
                seen.append(d)
    return seen


def find_report(patterns: Patterns, base: Optional[str] = None) -> Optional[str]:
    """``report.json`` beside the first records matching any pattern, or None."""
    for d in record_folders(patterns, base):
        path = io.join(d, REPORT_NAME)
        if io.isfile(path):
            return path
    return None


def read_report(path: Optional[str]) -> Optional[dict]:
    """The conversion report at ``path`` as a dict (None when ``path`` is None); unreadable or
    bad JSON raises `ConfigError` naming the file."""
    if not path:
        return None
    report = io.read_json(path, ConfigError, "conversion report (report.json)")
    if not isinstance(report, dict):
        raise ConfigError(f"{path}: conversion report must be a JSON object, got {type(report).__name__}")
    return report


def _label_map_in(folder: str) -> Optional[str]:
    report = io.join(folder, REPORT_NAME)
    if io.isfile(report):
        lm = read_report(report).get("label_map")
        if isinstance(lm, str) and lm:
            lm = io.resolve(lm, folder)
            if io.isfile(lm):
                return lm
    candidate = io.join(folder, LABEL_MAP_NAME)
    return candidate if io.isfile(candidate) else None


def find_label_map(patterns: Patterns, base: Optional[str] = None) -> Optional[str]:
    """The label map of the records ``patterns`` name: the ``label_map`` key of the
    ``report.json`` beside them (relative to that folder), else a ``label_map.pbtxt`` beside
    them; None when neither exists."""
    for d in record_folders(patterns, base):
        found = _label_map_in(d)
        if found:
            return found
    return None


__all__ = ["REPORT_NAME", "LABEL_MAP_NAME", "split_patterns", "record_folders", "find_report", "read_report",
           "find_label_map"]
