"""The shipped templates (`pipelines/`): finding one by name or path, its kind (TFOD2 or Model
Garden), and its header for `tfod-seg templates`."""

from __future__ import annotations

import dataclasses
import difflib
import os
from typing import List, Optional

from tfod_seg import io
from tfod_seg.config.garden import HEADER_RE, read_header_comments
from tfod_seg.errors import ConfigError


def shipped_dir(name: str) -> str:
    """A folder shipped with tfod-seg (``pipelines``, ``label_maps``): inside the installed
    package (a wheel puts the repository's top-level folders there, see setup.py), else the
    repository's top-level folder (a checkout or an editable install)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    inside = os.path.join(package, name)
    return inside if os.path.isdir(inside) else os.path.join(os.path.dirname(package), name)


TEMPLATE_DIR = shipped_dir("pipelines")
LABEL_MAP_DIR = shipped_dir("label_maps")
TFOD_EXTENSIONS = (".config", ".pbtxt")
GARDEN_EXTENSIONS = (".yaml", ".yml")


def template_kind(path: str) -> str:
    """``'tfod'`` for ``.config``/``.pbtxt``, ``'garden'`` for ``.yaml``/``.yml``."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in TFOD_EXTENSIONS:
        return "tfod"
    if ext in GARDEN_EXTENSIONS:
        return "garden"
    raise ConfigError(f"{path}: unknown config kind {ext or '(no extension)'!r}; expected a TFOD2 "
                      f"{'/'.join(TFOD_EXTENSIONS)} or a Model Garden {'/'.join(GARDEN_EXTENSIONS)} file")


def check_output_kind(out, kind: str) -> None:
    """Before any work: refuse an output path that cannot become a file, or whose extension is
    not of ``kind`` (`config --check` and `train` pick the engine by extension, so a YAML
    experiment named .config would not load)."""
    io.check_output_file(out)
    ext = os.path.splitext(os.fspath(out))[1].lower()
    wanted = GARDEN_EXTENSIONS if kind == "garden" else TFOD_EXTENSIONS
    if ext not in wanted:
        what = "a Model Garden experiment" if kind == "garden" else "a TFOD2 pipeline config"
        raise ConfigError(f"--out {os.fspath(out)}: the file is {what}; give it a {' or '.join(wanted)} name")


def template_paths(directory: Optional[str] = None) -> List[str]:
    """Every template file in ``directory`` (default ``pipelines/``), sorted."""
    directory = directory or TEMPLATE_DIR
    if not io.isdir(directory):
        return []
    return sorted(io.join(directory, f) for f in io.listdir(directory)
                  if f.lower().endswith(TFOD_EXTENSIONS + GARDEN_EXTENSIONS) and not f.startswith("."))


def find_template(template: str | os.PathLike) -> str:
    """A template path (local or URL), or a name in ``pipelines/`` (with or without its extension)."""
    t = os.fspath(template)
    if io.isfile(t):
        return t
    shipped = template_paths()
    for p in shipped:
        base = os.path.basename(p)
        if t in (base, os.path.splitext(base)[0]):
            return p
    names = [os.path.splitext(os.path.basename(p))[0] for p in shipped]
    near = difflib.get_close_matches(os.path.splitext(io.basename(t))[0], names, n=3, cutoff=0.4)
    hint = f"; nearest templates: {', '.join(near)}" if near else ""
    raise ConfigError(f"{t}: no such template file or name in {TEMPLATE_DIR}{hint} (see `tfod-seg templates`)")


def display_template(path: str) -> str:
    """``pipelines/NAME`` for a shipped template, else the path as given."""
    if io.is_url(path):
        return path
    ap = os.path.abspath(path)
    if os.path.dirname(ap) == os.path.abspath(TEMPLATE_DIR):
        return "pipelines/" + os.path.basename(ap)
    return path


@dataclasses.dataclass(frozen=True)
class TemplateInfo:
    name: str       # file name without extension (what --template accepts)
    path: str
    engine: str     # "garden" or "tfod"
    summary: str    # first header line: what the template is
    header: List[str]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def describe_template(path: str) -> TemplateInfo:
    lines = [l for l in read_header_comments(path) if not HEADER_RE.match("# " + l)]
    summary = next((l for l in lines if l), "(no header comment)")
    return TemplateInfo(os.path.splitext(os.path.basename(path))[0], path, template_kind(path), summary, lines)


def describe_templates(directory: Optional[str] = None) -> List[TemplateInfo]:
    """One `TemplateInfo` per template file, garden first, then tfod, each sorted by name."""
    infos = [describe_template(p) for p in template_paths(directory)]
    return sorted(infos, key=lambda i: (i.engine != "garden", i.name))


__all__ = ["shipped_dir", "TEMPLATE_DIR", "LABEL_MAP_DIR", "template_kind", "check_output_kind", "template_paths",
           "find_template",
           "display_template", "TemplateInfo", "describe_template", "describe_templates"]
