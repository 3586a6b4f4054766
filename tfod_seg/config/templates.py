"""The shipped templates (`pipelines/`) and their headers, for `tfod-seg templates`."""

from __future__ import annotations

import dataclasses
import os
from typing import List, Optional

from tfod_seg.config.garden import HEADER_RE, read_header_comments
from tfod_seg.config.generate import template_kind, template_paths


@dataclasses.dataclass(frozen=True)
class TemplateInfo:
    name: str       # file name without extension (what --template accepts)
    path: str
    engine: str     # "garden" or "tfod"
    summary: str    # first header line: what the template is
    header: List[str]


def describe_template(path: str) -> TemplateInfo:
    lines = [l for l in read_header_comments(path) if not HEADER_RE.match("# " + l)]
    summary = next((l for l in lines if l), "(no header comment)")
    return TemplateInfo(os.path.splitext(os.path.basename(path))[0], path, template_kind(path), summary, lines)


def describe_templates(directory: Optional[str] = None) -> List[TemplateInfo]:
    """One `TemplateInfo` per template file, garden first, then tfod, each sorted by name."""
    infos = [describe_template(p) for p in template_paths(directory)]
    return sorted(infos, key=lambda i: (i.engine != "garden", i.name))
