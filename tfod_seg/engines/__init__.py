"""Training engines: ``garden`` (TF Model Garden, default) and ``tfod`` (TFOD2 in its own venv).

Each engine implements `tfod_seg.engines.base.Engine` (train / evaluate / export with typed
options and result dataclasses) and is found through a name → implementation table:

    engine = engine_for("out/garden.yaml")          # resolve the name once ...
    summary = engine.train(TrainOptions("out/garden.yaml", "runs/a"))   # ... call the protocol

`resolve_engine` picks the engine name for a config file: an explicit ``engine`` wins;
otherwise a Model Garden experiment YAML (``.yaml``/``.yml``) means ``garden`` and a TFOD2
``pipeline.config`` (``.config``/``.pbtxt``/``.txt``) means ``tfod``. Files with another
extension are recognised by content (a ``# tfod-seg experiment:`` header or a top-level
``task:`` key for Model Garden, a ``model {`` block for TFOD2).

A new engine is one module with a class implementing `Engine`, plus one `register_engine`
line below ("module:attribute", imported on first use so the table costs nothing).
"""

from __future__ import annotations

import importlib
import re
from typing import Callable, Dict, Tuple, Union

from tfod_seg import io
from tfod_seg.engines.base import (Engine, EvalResult, EvaluateOptions, ExportOptions, ExportResult,
                                   TrainOptions, TrainSummary)
from tfod_seg.errors import ConfigError, UserError

__all__ = ["Engine", "EvalResult", "EvaluateOptions", "ExportOptions", "ExportResult", "TrainOptions",
           "TrainSummary", "ENGINES", "engine_for", "engine_names", "get_engine", "register_engine",
           "resolve_engine"]

_REGISTRY: Dict[str, Union[str, Callable[[], Engine]]] = {}
_INSTANCES: Dict[str, Engine] = {}


def register_engine(name: str, factory: Union[str, Callable[[], Engine]]) -> None:
    """Add an engine: ``factory`` is a callable returning it or a ``"module:attribute"`` string."""
    _REGISTRY[name] = factory
    _INSTANCES.pop(name, None)


register_engine("garden", "tfod_seg.engines.garden.engine:GardenEngine")
register_engine("tfod", "tfod_seg.engines.tfod.engine:TfodEngine")


def engine_names() -> Tuple[str, ...]:
    return tuple(_REGISTRY)


ENGINES = engine_names()

_GARDEN_EXT = (".yaml", ".yml")
_TFOD_EXT = (".config", ".pbtxt", ".txt", ".pbtext")


def get_engine(name: str) -> Engine:
    """The engine registered as ``name`` (created once); `UserError` for an unknown name."""
    if name not in _REGISTRY:
        raise UserError(f"--engine {name!r} is not an engine; expected one of {', '.join(_REGISTRY)}")
    if name not in _INSTANCES:
        factory = _REGISTRY[name]
        if isinstance(factory, str):
            module, attr = factory.split(":")
            factory = getattr(importlib.import_module(module), attr)
        _INSTANCES[name] = factory()
    return _INSTANCES[name]


def resolve_engine(config_path, engine: str | None = None) -> str:
    """Return the engine name for ``config_path`` (see module docstring)."""
    if engine is not None:
        if engine not in _REGISTRY:
            raise UserError(f"--engine {engine!r} is not an engine; expected one of {', '.join(_REGISTRY)}")
        return engine
    path = io.check_path(config_path, "config")
    ext = ("." + io.basename(path).rsplit(".", 1)[-1].lower()) if "." in io.basename(path) else ""
    if ext in _GARDEN_EXT:
        return "garden"
    if ext in _TFOD_EXT:
        return "tfod"
    head = io.read_text(path, ConfigError, "config")[:65536]
    if re.search(r"^#\s*tfod-seg experiment:", head, re.M) or re.search(r"^(task|trainer|runtime)\s*:", head, re.M):
        return "garden"
    if re.search(r"^\s*model\s*\{", head, re.M) or re.search(r"^\s*train_config\s*\{", head, re.M):
        return "tfod"
    raise ConfigError(
        f"{path}: cannot tell which engine this config is for; expected a Model Garden experiment "
        f"(.yaml) or a TFOD2 pipeline.config (.config), or pass --engine garden|tfod"
    )


def engine_for(config_path, engine: str | None = None) -> Engine:
    """The engine for ``config_path`` (`resolve_engine`), ready to call."""
    return get_engine(resolve_engine(config_path, engine))
