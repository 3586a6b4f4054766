"""Training engines: ``garden`` (TF Model Garden, default) and ``tfod`` (TFOD2 in its own venv).

`resolve_engine` picks the engine for a config file: an explicit ``engine`` wins; otherwise a
Model Garden experiment YAML (``.yaml``/``.yml``) means ``garden`` and a TFOD2
``pipeline.config`` (``.config``/``.pbtxt``/``.txt``) means ``tfod``. Files with another
extension are recognised by content (a ``# tfod-seg experiment:`` header or a top-level
``task:`` key for Model Garden, a ``model {`` block for TFOD2).
"""

from __future__ import annotations

import os
import re

from tfod_seg.errors import ConfigError, UserError

ENGINES = ("garden", "tfod")

_GARDEN_EXT = (".yaml", ".yml")
_TFOD_EXT = (".config", ".pbtxt", ".txt", ".pbtext")


def resolve_engine(config_path, engine: str | None = None) -> str:
    """Return ``"garden"`` or ``"tfod"`` for ``config_path`` (see module docstring)."""
    if engine is not None:
        if engine not in ENGINES:
            raise UserError(f"--engine {engine!r} is not an engine; expected one of {', '.join(ENGINES)}")
        return engine
    path = os.fspath(config_path)
    ext = os.path.splitext(path)[1].lower()
    if ext in _GARDEN_EXT:
        return "garden"
    if ext in _TFOD_EXT:
        return "tfod"
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(65536)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config ({e.strerror})") from None
    if re.search(r"^#\s*tfod-seg experiment:", head, re.M) or re.search(r"^(task|trainer|runtime)\s*:", head, re.M):
        return "garden"
    if re.search(r"^\s*model\s*\{", head, re.M) or re.search(r"^\s*train_config\s*\{", head, re.M):
        return "tfod"
    raise ConfigError(
        f"{path}: cannot tell which engine this config is for; expected a Model Garden experiment "
        f"(.yaml) or a TFOD2 pipeline.config (.config), or pass --engine garden|tfod"
    )
