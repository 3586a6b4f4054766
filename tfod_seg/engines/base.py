"""The `Engine` protocol: what every training engine (garden, tfod) implements.

An engine trains, evaluates and exports from one config. The CLI resolves the engine once
(`tfod_seg.engines.engine_for`) and calls these three methods with typed options; every
result is a dataclass with ``to_json()``.

Options that only one engine understands carry the engines that accept them in their field
metadata; `check_supported` rejects the others in one place, naming the flags (so
``--use_tpu`` on a Model Garden config and ``--mixed_precision`` on a TFOD2 config fail the
same way). Adding an engine means one module implementing `Engine` and one line in the
registry (`tfod_seg.engines.register_engine`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, runtime_checkable

from tfod_seg.engines.progress import TrainEvent
from tfod_seg.errors import UserError

GARDEN_ONLY = ("garden",)
TFOD_ONLY = ("tfod",)

ProgressCallback = Optional[Callable[[TrainEvent], None]]


def option(default: Any = None, *, flag: Optional[str] = None, engines: Optional[Sequence[str]] = None,
           values: Optional[Dict[str, Sequence[Any]]] = None, factory: Optional[Callable[[], Any]] = None):
    """A dataclass field for an engine option.

    ``flag`` is the CLI flag named in errors (default ``--<field name>``); ``engines`` the
    engines that accept a non-default value (default: all); ``values`` restricts the values an
    engine accepts (``{"tfod": ("auto", "tpu")}``).
    """
    meta = {"flag": flag, "engines": tuple(engines) if engines else None, "values": values or {}}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class _Options:
    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TrainOptions(_Options):
    """What `Engine.train` takes. ``num_train_steps`` is the TOTAL step count (as in TFOD2)."""

    config_path: str
    model_dir: str
    num_train_steps: Optional[int] = option()
    checkpoint_every_n: Optional[int] = option()
    strategy: str = option("auto", values={"tfod": ("auto", "tpu", "multi_worker")})
    tpu_name: Optional[str] = option()
    num_workers: int = option(1)
    mixed_precision: bool = option(False, engines=GARDEN_ONLY)
    init_checkpoint: Optional[str] = option(flag="--checkpoint", engines=GARDEN_ONLY)
    time_budget: Optional[str] = option(engines=GARDEN_ONLY)  # "8m", "90s", "2h" or seconds
    eval_every: Optional[str] = option(engines=GARDEN_ONLY)  # steps ("200") or a duration ("2m")
    patience: Optional[int] = option(engines=GARDEN_ONLY)
    min_delta: float = option(0.0, engines=GARDEN_ONLY)
    eval_metric: str = option("mask_AP", engines=GARDEN_ONLY)
    # TFOD2 (model_main_tf2) flags
    sample_1_of_n_eval_examples: Optional[int] = option(engines=TFOD_ONLY)
    use_tpu: Optional[bool] = option(engines=TFOD_ONLY)
    config_override: Optional[str] = option(engines=TFOD_ONLY)
    log_file: Optional[str] = option(engines=TFOD_ONLY)
    tfod_python: Optional[str] = option(flag="--tfod-python", engines=TFOD_ONLY)


@dataclasses.dataclass
class EvaluateOptions(_Options):
    """What `Engine.evaluate` takes: ``once`` evaluates the latest checkpoint and returns;
    otherwise each new checkpoint is evaluated until training ends or ``eval_timeout`` s pass."""

    config_path: str
    checkpoint_dir: str
    once: bool = option(False)
    eval_timeout: Optional[float] = option()
    model_dir: Optional[str] = option(engines=TFOD_ONLY)
    sample_1_of_n_eval_examples: Optional[int] = option(engines=TFOD_ONLY)
    use_tpu: Optional[bool] = option(engines=TFOD_ONLY)
    config_override: Optional[str] = option(engines=TFOD_ONLY)
    log_file: Optional[str] = option(engines=TFOD_ONLY)
    tfod_python: Optional[str] = option(flag="--tfod-python", engines=TFOD_ONLY)


@dataclasses.dataclass
class ExportOptions(_Options):
    """What `Engine.export` takes (extend with new fields; engines check what they support)."""

    config_path: str
    trained_checkpoint_dir: str
    output_directory: str
    input_type: str = option("image_tensor")
    checkpoint: Optional[str] = option(engines=GARDEN_ONLY)  # None: latest; "best"; or a prefix
    config_override: Optional[str] = option(engines=TFOD_ONLY)
    tfod_python: Optional[str] = option(flag="--tfod-python", engines=TFOD_ONLY)
    # Deployment formats (tfod_seg.engines.edge_spec): saved_model, tflite, onnx; batch None = dynamic.
    format: str = option("saved_model", flag="--format", engines=GARDEN_ONLY)
    quantize: str = option("none", flag="--quantize", engines=GARDEN_ONLY)
    batch_size: Optional[int] = option(1, flag="--batch_size", engines=GARDEN_ONLY)


class _Result:
    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TrainSummary(_Result):
    """How training went.

    ``start_step`` / ``final_step`` are global steps (a resumed run starts above 0);
    ``total_steps`` the target total; ``already_done`` is True when the latest checkpoint had
    already reached it (nothing trained). ``steps_per_sec`` is the rate of the last loop,
    ``train_seconds`` the wall time of the training loop. ``checkpoint`` is the latest
    checkpoint prefix; ``params_yaml`` / ``config_copy`` the config saved beside it (garden);
    ``log_path`` the engine's full log (tfod).
    """

    engine: str
    model_dir: str
    total_steps: Optional[int]
    start_step: Optional[int] = None
    final_step: Optional[int] = None
    already_done: bool = False
    trained_steps: int = 0
    final_loss: Optional[float] = None
    steps_per_sec: Optional[float] = None
    train_seconds: float = 0.0
    checkpoint: Optional[str] = None
    experiment: Optional[str] = None
    strategy: Optional[str] = None
    params_yaml: Optional[str] = None
    config_copy: Optional[str] = None
    log_path: Optional[str] = None
    stop_reason: Optional[str] = None
    time_budget_seconds: Optional[float] = None
    measured_steps_per_sec: Optional[float] = None
    evaluations: int = 0
    best: Optional[Dict[str, Any]] = None


@dataclasses.dataclass
class EvalResult(_Result):
    """COCO metrics of one checkpoint: ``metrics`` maps ``box_AP``, ``mask_AP``, ``mask_AP50``, ...
    to floats in [0, 1] (-1 where COCO has no object of that size). ``history`` holds one
    result per evaluated checkpoint (continuous evaluation), oldest first.

    ``to_json()`` is the flat dict written to metric files: the metrics plus ``step``,
    ``checkpoint``, ``eval_seconds`` (when known) and ``history``."""

    metrics: Dict[str, float]
    step: Optional[int] = None
    checkpoint: Optional[str] = None
    eval_seconds: Optional[float] = None
    history: List["EvalResult"] = dataclasses.field(default_factory=list)
    log_path: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = dict(self.metrics)
        for key in ("step", "checkpoint", "eval_seconds"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.history:
            out["history"] = [h.to_json() for h in self.history]
        return out

    def get(self, name: str, default=None):
        return self.metrics.get(name, default)


@dataclasses.dataclass
class ExportResult(_Result):
    """Where the export went: ``saved_model`` is ``output_directory/saved_model``."""

    engine: str
    output_directory: str
    saved_model: str
    input_type: str
    checkpoint: Optional[str] = None
    log_path: Optional[str] = None
    format: str = "saved_model"
    model_path: Optional[str] = None  # the .tflite / .onnx file for those formats (saved_model otherwise)
    batch_size: Optional[int] = 1


@runtime_checkable
class Engine(Protocol):
    """A training engine. ``name`` is its registry key; ``label`` how errors name its configs."""

    name: str
    label: str
    hint: str

    def train(self, options: TrainOptions, on_progress: ProgressCallback = None) -> TrainSummary: ...

    def evaluate(self, options: EvaluateOptions, on_progress: ProgressCallback = None) -> EvalResult: ...

    def export(self, options: ExportOptions) -> ExportResult: ...


def unsupported_flags(engine_name: str, options) -> List[str]:
    """The flags of ``options`` set to a value ``engine_name`` does not accept, in field order."""
    bad = []
    for field in dataclasses.fields(options):
        meta = field.metadata
        if "engines" not in meta:
            continue
        value = getattr(options, field.name)
        default = field.default if field.default is not dataclasses.MISSING else None
        flag = meta["flag"] or f"--{field.name}"
        if meta["engines"] and engine_name not in meta["engines"] and value not in (None, False, default):
            bad.append(flag)
        allowed = meta["values"].get(engine_name)
        if allowed is not None and value not in allowed:
            bad.append(f"{flag} {value}")
    return bad


def check_supported(engine: Engine, options) -> None:
    """Raise `UserError` naming every option ``engine`` does not accept (one message for all)."""
    bad = unsupported_flags(engine.name, options)
    if bad:
        other = "TFOD2" if engine.name != "tfod" else "Model Garden"
        raise UserError(f"{', '.join(bad)}: {other}-only flag(s), but the engine is {engine.name} "
                        f"({engine.label}); {engine.hint}")
