"""Checks a train / evaluate / export job before it starts, on both engines.

A job that would fail after minutes of start-up (or, worse, run silently on the wrong device)
is stopped first, with one message listing every problem:

* **TPU** (``--strategy tpu`` on garden, ``--use_tpu`` on tfod): a TPU reads and writes only
  Cloud Storage, so every path the job touches (flags and config fields) must be ``gs://``;
  the message lists each local path with the flag or config field it came from. The precision
  must suit the device (TPUs compute in bfloat16, not float16) and the batch size must divide
  by the number of TPU cores (``--num_tpu_cores``, 8 for a v2-8/v3-8).
* **mirrored / multi_worker**: the global batch divides by the number of replicas (GPUs x
  workers); ``TF_CONFIG`` is valid JSON whose task type and index are in its cluster.
* **GPU**: ``--strategy gpu``/``mirrored`` with no GPU visible is an error (not a silent CPU
  run); ``auto`` reports which device it picked and why.

The rules are pure functions over plain data (`Job`, `Devices`, the ``TF_CONFIG`` text) so they
are tested as tables; `preflight` is the small entry the CLI calls: it reads the config (Model
Garden YAML or TFOD2 pipeline.config) for the paths, batch size and precision, lists the visible
devices only when a rule needs them, and returns a `PreflightReport` (notes for the console)
or raises `PreflightError`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from tfod_seg import io
from tfod_seg.config.garden import load_experiment
from tfod_seg.config.generate import input_reader_paths
from tfod_seg.errors import UserError
from tfod_seg.pbtxt import PbtxtDocument

MODES = ("train", "evaluate", "export")
STRATEGIES = ("auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu")
DEFAULT_TPU_CORES = 8  # v2-8 / v3-8: the smallest Cloud TPU slices
_TF_CONFIG_EXAMPLE = ('{"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222"]}, '
                      '"task": {"type": "worker", "index": 0}}')


class PreflightError(UserError):
    """The job would fail or run on the wrong device: one line per problem."""


@dataclasses.dataclass(frozen=True)
class PathUse:
    """A path the job reads or writes, and where it came from (``--model_dir``, a config field).
    ``host``: written by the tfod-seg process itself, not by TensorFlow (may stay local on a TPU)."""

    path: str
    source: str
    host: bool = False


@dataclasses.dataclass(frozen=True)
class Devices:
    """What this machine shows TensorFlow: GPU count (and GPU 0's compute capability), TPU cores."""

    gpus: int = 0
    tpus: int = 0
    gpu_compute_capability: Optional[Tuple[int, int]] = None


@dataclasses.dataclass(frozen=True)
class TfConfig:
    """A parsed ``TF_CONFIG``: the cluster (task type -> addresses) and this process's task."""

    cluster: Dict[str, List[str]]
    task_type: str
    task_index: int

    @property
    def num_workers(self) -> int:
        """Workers that compute (chief included; ``evaluator`` and ``ps`` are not replicas)."""
        return len(self.cluster.get("chief", [])) + len(self.cluster.get("worker", []))


@dataclasses.dataclass(frozen=True)
class Job:
    """Everything the rules look at, as plain data.

    ``strategy`` is the requested one (``tpu`` for tfod's ``--use_tpu``; tfod otherwise uses
    ``auto``, i.e. TFOD2's MirroredStrategy over the visible GPUs). ``batch`` is the global batch
    of the mode's input (train or eval) and ``batch_field`` its config field; ``precision`` is
    ``float32``/``float16``/``bfloat16`` (None: float32) from ``precision_field``, or
    ``"auto"`` when ``--mixed_precision`` lets the engine pick per device.
    """

    mode: str = "train"
    engine: str = "garden"
    strategy: str = "auto"
    paths: Tuple[PathUse, ...] = ()
    batch: Optional[int] = None
    batch_field: str = ""
    precision: Optional[str] = None
    precision_field: str = ""
    num_workers: int = 1
    tpu_cores: int = DEFAULT_TPU_CORES
    tf_config: Optional[str] = None


@dataclasses.dataclass
class PreflightReport:
    """What preflight decided: resolved strategy, device, replicas; notes to show the user."""

    mode: str
    engine: str
    strategy: str
    device: str
    replicas: int
    notes: List[str] = dataclasses.field(default_factory=list)
    warnings: List[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


# -- pure rules -------------------------------------------------------------------------------
def parse_tf_config(raw: Optional[str]) -> Optional[TfConfig]:
    """``TF_CONFIG`` as a `TfConfig` (None when unset or empty); any defect is a one-line
    `PreflightError` naming what is wrong and showing the expected shape."""
    if raw is None or not raw.strip():
        return None

    def bad(why: str) -> PreflightError:
        return PreflightError(f"TF_CONFIG: {why}; expected JSON like {_TF_CONFIG_EXAMPLE}")

    try:
        cfg = json.loads(raw)
    except ValueError as e:
        raise bad(f"not valid JSON ({e.msg} at character {e.pos})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("cluster"), dict) or not cfg["cluster"]:
        raise bad("no 'cluster' object (task type -> list of host:port)")
    cluster = cfg["cluster"]
    for kind, hosts in cluster.items():
        if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
            raise bad(f"cluster.{kind} is {hosts!r}, not a list of 'host:port' strings")
    task = cfg.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise bad(f"task is {task!r}: it needs both 'type' and 'index'")
    kind, index = task["type"], task["index"]
    if kind not in cluster:
        raise bad(f"task.type {kind!r} is not in the cluster (which has {', '.join(sorted(cluster))})")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise bad(f"task.index {index!r} is not an index into cluster.{kind} ({len(cluster[kind])} entries: "
                  f"0..{len(cluster[kind]) - 1})")
    return TfConfig({k: list(v) for k, v in cluster.items()}, kind, index)


def local_paths(paths: Sequence[PathUse]) -> List[PathUse]:
    """The paths TensorFlow touches that are not on Cloud Storage (each once, in order)."""
    seen, out = set(), []
    for use in paths:
        if use.path and not use.host and io.scheme(use.path) != "gs" and (use.path, use.source) not in seen:
            seen.add((use.path, use.source))
            out.append(use)
    return out


def check_tpu_paths(paths: Sequence[PathUse]) -> Optional[str]:
    """One message listing every non-``gs://`` path of a TPU job with its source, or None."""
    bad = local_paths(paths)
    if not bad:
        return None
    listed = "; ".join(f"{u.source} {u.path}" for u in bad)
    return (f"a TPU reads and writes only Cloud Storage, but {len(bad)} path(s) are not gs://: {listed} "
            f"(copy the data with `gcloud storage cp -r` and give gs://BUCKET/... paths)")


def check_schemes(paths: Sequence[PathUse]) -> List[str]:
    """Errors for paths no installed filesystem can open (``s3://`` without a plugin, ``gs:/b``)."""
    errors = []
    for use in paths:
        try:
            io.check_path(use.path, use.source)
        except io.PathError as e:
            errors.append(str(e))
    return errors


def resolve_strategy(strategy: str, devices: Devices, tf_config: Optional[TfConfig],
                     num_workers: int = 1) -> Tuple[str, str]:
    """``(strategy, why)``: ``auto`` becomes multi_worker (TF_CONFIG with several workers or
    ``num_workers > 1``), mirrored (several GPUs), gpu (one) or cpu, as the garden engine does."""
    if strategy not in STRATEGIES:
        raise PreflightError(f"--strategy {strategy!r} is not known; expected one of {', '.join(STRATEGIES)}")
    if strategy != "auto":
        return strategy, "requested"
    if num_workers > 1 or (tf_config is not None and tf_config.num_workers > 1):
        n = tf_config.num_workers if tf_config else num_workers
        return "multi_worker", f"TF_CONFIG lists {n} workers" if tf_config else f"--num_workers {num_workers}"
    if devices.gpus > 1:
        return "mirrored", f"{devices.gpus} GPUs visible"
    if devices.gpus == 1:
        return "gpu", "1 GPU visible"
    return "cpu", "no GPU visible"


def check_devices(strategy: str, devices: Devices, tf_config: Optional[TfConfig], num_workers: int = 1) -> List[str]:
    """Errors for a strategy this machine (or TF_CONFIG) cannot run."""
    errors = []
    if strategy in ("gpu", "mirrored") and devices.gpus == 0:
        errors.append(f"--strategy {strategy} but TensorFlow sees no GPU (check the CUDA drivers, "
                      f"CUDA_VISIBLE_DEVICES and that the GPU build of TensorFlow is installed); "
                      f"use --strategy cpu to train on the CPU")
    if strategy == "mirrored" and devices.gpus == 1:
        errors.append("--strategy mirrored but TensorFlow sees only 1 GPU; use --strategy gpu")
    if strategy == "multi_worker":
        if tf_config is None:
            errors.append(f"--strategy multi_worker needs the TF_CONFIG environment variable naming the "
                          f"cluster and this worker's task, e.g. TF_CONFIG='{_TF_CONFIG_EXAMPLE}'")
        elif num_workers > 1 and tf_config.num_workers != num_workers:
            errors.append(f"--num_workers {num_workers} but TF_CONFIG lists {tf_config.num_workers} "
                          f"workers (chief + worker)")
    return errors


def count_replicas(strategy: str, devices: Devices, tf_config: Optional[TfConfig], tpu_cores: int,
                   num_workers: int = 1) -> int:
    """Replicas the global batch is split over: TPU cores, GPUs, or GPUs (at least 1) x workers."""
    if strategy == "tpu":
        return tpu_cores
    if strategy == "mirrored":
        return max(1, devices.gpus)
    if strategy == "multi_worker":
        workers = tf_config.num_workers if tf_config else num_workers
        return max(1, workers) * max(1, devices.gpus)
    return 1


def check_batch(batch: Optional[int], replicas: int, field: str, strategy: str) -> Optional[str]:
    """An error when the global batch does not split evenly over the replicas."""
    if batch is None or replicas <= 1 or batch % replicas == 0:
        return None
    unit = "TPU cores (--num_tpu_cores)" if strategy == "tpu" else "replicas"
    lower, upper = batch // replicas * replicas, (batch // replicas + 1) * replicas
    choices = f"{lower} or {upper}" if lower else f"{upper}"
    return (f"{field} {batch} is not divisible by the {replicas} {unit} of --strategy {strategy}: "
            f"each replica gets an equal share; use {choices}")


def check_precision(precision: Optional[str], field: str, strategy: str,
                    devices: Devices) -> Tuple[List[str], List[str]]:
    """``(errors, warnings)`` for a compute precision on the device kind of ``strategy``."""
    errors: List[str] = []
    warnings: List[str] = []
    if precision in (None, "", "float32", "auto"):
        return errors, warnings
    if precision not in ("float16", "bfloat16"):
        errors.append(f"{field} {precision!r} is not a precision; expected float32, float16 or bfloat16")
    elif strategy == "tpu" and precision == "float16":
        errors.append(f"{field} float16 on a TPU: TPUs compute in bfloat16; set it to bfloat16")
    elif strategy in ("gpu", "mirrored") or (strategy == "multi_worker" and devices.gpus):
        cc = devices.gpu_compute_capability
        if precision == "bfloat16" and cc is not None and cc < (8, 0):
            warnings.append(f"{field} bfloat16 on a GPU of compute capability {cc[0]}.{cc[1]}: only 8.0+ "
                            f"(A100, L4, H100) computes bfloat16 fast; float16 is the GPU choice")
    elif strategy != "tpu":
        what = "float16 is emulated on the CPU (much slower)" if precision == "float16" else \
            "bfloat16 on the CPU helps only on CPUs with AMX/AVX512-BF16"
        warnings.append(f"{field} {precision} with --strategy {strategy}: {what}; float32 is the CPU choice")
    return errors, warnings


def describe_device(strategy: str, devices: Devices, replicas: int) -> str:
    if strategy == "tpu":
        return f"TPU ({replicas} cores)"
    if strategy in ("gpu", "mirrored"):
        return f"{max(1, replicas)} GPU(s)"
    if strategy == "multi_worker":
        return f"{replicas} replica(s) over the TF_CONFIG cluster ({'GPU' if devices.gpus else 'CPU'})"
    return "CPU"


def check_job(job: Job, devices: Devices) -> PreflightReport:
    """Apply every rule to ``job``; `PreflightError` lists all failures (one per line)."""
    errors: List[str] = check_schemes(job.paths)
    tf_config = None
    try:
        tf_config = parse_tf_config(job.tf_config)
    except PreflightError as e:
        if (job.engine == "garden" and job.strategy in ("auto", "multi_worker")) or job.num_workers > 1:
            errors.append(str(e))
    # TFOD2's model_main_tf2 goes multi-worker only with --num_workers > 1, whatever TF_CONFIG says.
    cluster = None if job.engine == "tfod" and job.num_workers <= 1 else tf_config
    strategy, why = resolve_strategy(job.strategy, devices, cluster, job.num_workers)
    notes = []
    if job.strategy == "auto":
        notes.append(f"strategy auto picked {strategy} ({why})")
    if strategy == "tpu":
        msg = check_tpu_paths(job.paths)
        if msg:
            errors.append(msg)
        if job.tpu_cores <= 0:
            errors.append(f"--num_tpu_cores {job.tpu_cores} must be positive (8 for a v2-8/v3-8)")
    errors += check_devices(strategy, devices, cluster, job.num_workers)
    replicas = count_replicas(strategy, devices, cluster, max(1, job.tpu_cores), job.num_workers)
    if job.mode != "export":
        msg = check_batch(job.batch, replicas, job.batch_field, strategy)
        if msg:
            errors.append(msg)
    perr, warnings = check_precision(job.precision, job.precision_field, strategy, devices)
    errors += perr
    if errors:
        head = f"preflight ({job.engine} {job.mode}, strategy {strategy}): {len(errors)} problem(s)"
        raise PreflightError("\n  ".join([head] + errors))
    device = describe_device(strategy, devices, replicas)
    notes.append(f"{job.mode} on {device}, {replicas} replica(s)")
    if job.mode == "export":
        notes = []  # export runs on one device whatever the strategy: nothing worth saying
    return PreflightReport(job.mode, job.engine, strategy, device, replicas, notes, warnings)


# -- gathering the job from flags and config ---------------------------------------------------
_LABEL_MAP_HEADER = re.compile(r"^#\s*(?:tfod-seg\s+)?label[ _]map:\s*(\S+)", re.MULTILINE)


def _split(value) -> List[str]:
    if value in (None, ""):
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [p.strip() for item in items for p in str(item).split(",") if p.strip()]


def _garden_job_fields(config_path: str, mode: str) -> Dict[str, Any]:
    _, cfg = load_experiment(config_path)
    t = cfg.task
    paths: List[PathUse] = []
    data, field = (t.train_data, "task.train_data") if mode == "train" else (t.validation_data, "task.validation_data")
    if mode != "export":
        paths += [PathUse(p, f"{field}.input_path") for p in _split(data.input_path)]
    if mode == "train" and t.init_checkpoint:
        paths.append(PathUse(t.init_checkpoint, "task.init_checkpoint"))
    if mode == "evaluate" and getattr(t, "annotation_file", None):  # Mask R-CNN only (not semantic tasks)
        paths.append(PathUse(t.annotation_file, "task.annotation_file"))
    m = _LABEL_MAP_HEADER.search(io.read_text(config_path, UserError, "config"))
    if mode == "export" and m:
        paths.append(PathUse(io.resolve(m.group(1), io.dirname(io.abspath(config_path))), "config header '# label map:'"))
    return {"paths": paths, "batch": int(data.global_batch_size), "batch_field": f"{field}.global_batch_size",
            "precision": cfg.runtime.mixed_precision_dtype or None, "precision_field": "runtime.mixed_precision_dtype"}


def _tfod_job_fields(config_path: str, mode: str) -> Dict[str, Any]:
    doc = PbtxtDocument.load(config_path)
    paths: List[PathUse] = []
    readers = [r for r in input_reader_paths(doc) if (r == "train_input_reader") == (mode == "train")]
    for r in readers if mode != "export" else []:
        for p in _split(doc.get_all(f"{r}.tf_record_input_reader.input_path")):
            paths.append(PathUse(p, f"{r}.tf_record_input_reader.input_path"))
        lm = doc.get(f"{r}.label_map_path", None)
        if lm:
            paths.append(PathUse(str(lm), f"{r}.label_map_path"))
    ck = doc.get("train_config.fine_tune_checkpoint", None)
    if mode == "train" and ck:
        paths.append(PathUse(str(ck), "train_config.fine_tune_checkpoint"))
    key = "train_config.batch_size" if mode == "train" else "eval_config.batch_size"
    batch = doc.get(key, None)
    bf16 = doc.get("train_config.use_bfloat16", False) is True
    return {"paths": paths, "batch": int(batch) if batch is not None else None, "batch_field": key,
            "precision": "bfloat16" if bf16 and mode == "train" else None,
            "precision_field": "train_config.use_bfloat16"}


def build_job(mode: str, engine: str, config_path, flags: Mapping[str, Any],
              tf_config: Optional[str] = None) -> Job:
    """A `Job` from the CLI flags (keys are flag names: ``--model_dir``, ``--strategy``,
    ``--use_tpu``, ``--num_workers``, ``--num_tpu_cores``, ``--mixed_precision``, and any other
    ``--flag`` whose value is a path) and the config at ``config_path``."""
    if mode not in MODES:
        raise PreflightError(f"preflight: mode {mode!r} is not one of {', '.join(MODES)}")
    config_path = os.fspath(config_path)
    fields = (_garden_job_fields if engine == "garden" else _tfod_job_fields)(config_path, mode)
    strategy = flags.get("--strategy") or "auto"
    if flags.get("--use_tpu"):
        strategy = "tpu"
    paths = [PathUse(config_path, "--pipeline_config_path")]
    paths += [PathUse(os.fspath(v), k, host=k in HOST_PATH_FLAGS) for k, v in flags.items()
              if k in PATH_FLAGS + HOST_PATH_FLAGS and v not in (None, "")]
    precision = "auto" if flags.get("--mixed_precision") else fields["precision"]
    return Job(mode=mode, engine=engine, strategy=strategy, paths=tuple(paths + fields["paths"]),
               batch=fields["batch"], batch_field=fields["batch_field"], precision=precision,
               precision_field=fields["precision_field"], num_workers=int(flags.get("--num_workers") or 1),
               tpu_cores=int(flags.get("--num_tpu_cores") or DEFAULT_TPU_CORES), tf_config=tf_config)


def flags_from_options(options, **extra) -> Dict[str, Any]:
    """The ``--flag -> value`` mapping of an engine options dataclass (`tfod_seg.engines.base`:
    a field's ``flag`` metadata, else ``--<field name>``; ``config_path`` is
    ``--pipeline_config_path``), plus ``extra`` (e.g. ``num_tpu_cores=8``) under ``--<name>``."""
    flags: Dict[str, Any] = {}
    for field in dataclasses.fields(options):
        if field.name == "config_path":
            continue
        flag = (field.metadata or {}).get("flag") or f"--{field.name}"
        flags[flag] = getattr(options, field.name)
    flags.update({f"--{k}": v for k, v in extra.items()})
    return flags


# Flags naming paths the job (TensorFlow, i.e. the TPU) reads or writes; HOST_PATH_FLAGS are
# written by the tfod-seg process on the host, so they may stay local (their scheme is checked).
PATH_FLAGS = ("--model_dir", "--checkpoint", "--checkpoint_dir", "--trained_checkpoint_dir", "--output_directory")
HOST_PATH_FLAGS = ("--metrics_json", "--log_file")


def visible_devices() -> Devices:
    """GPUs and TPU cores TensorFlow sees on this machine (imports TensorFlow)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    cc = None
    if gpus:
        try:
            cc = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        except (ValueError, RuntimeError):
            cc = None
    return Devices(gpus=len(gpus), tpus=len(tf.config.list_physical_devices("TPU")),
                   gpu_compute_capability=tuple(cc) if cc else None)


def _needs_devices(job: Job) -> bool:
    if job.strategy in ("cpu", "tpu") or job.mode == "export":
        return False
    return True


def preflight(mode: str, engine: str, config_path, flags: Mapping[str, Any], *,
              environ: Optional[Mapping[str, str]] = None, devices: Optional[Devices] = None) -> PreflightReport:
    """Check a job before it starts (see module docstring); the entry the CLI calls.

    ``flags`` maps CLI flag names to values (see `build_job`); ``environ`` defaults to
    ``os.environ`` (for ``TF_CONFIG``); ``devices`` defaults to what TensorFlow sees, listed
    only when a rule needs them (never for cpu/tpu/export).
    """
    env = os.environ if environ is None else environ
    job = build_job(mode, engine, config_path, flags, env.get("TF_CONFIG"))
    if devices is None:
        devices = visible_devices() if _needs_devices(job) else Devices()
    return check_job(job, devices)
