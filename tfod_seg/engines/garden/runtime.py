"""What train, evaluate and export share on Model Garden: config loading, strategy, validation data.

Everything here calls Model Garden (`official.common.distribute_utils`,
`official.modeling.performance`, `official.core.train_utils`); nothing is re-implemented.
TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import hashlib
import io as _stdio
import json
import logging
import os
from typing import Any, Dict, Mapping, Optional, Tuple

from tfod_seg import io
from tfod_seg.config.garden import load_experiment
from tfod_seg.errors import ConfigError, EngineError

logger = logging.getLogger(__name__)

STRATEGIES = ("auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu")
#: Save training checkpoints in a background thread, as ``python -m official.vision.train`` does by
#: default (its ``--enable_async_checkpointing``): the next loop trains while the last checkpoint is
#: written; Orbit waits for the write when ``controller.train`` returns.
ASYNC_CHECKPOINTS = True


def load_params(config_path, overrides: Optional[Mapping[str, Any]] = None) -> Tuple[str, Any]:
    """``(experiment_name, ExperimentConfig)`` from a tfod-seg experiment YAML (+ overrides)."""
    path = io.check_path(config_path, "--pipeline_config_path")
    if not io.isfile(path):
        raise ConfigError(f"{path}: --pipeline_config_path does not exist (expected a Model Garden experiment .yaml)")
    return load_experiment(path, overrides)


def tf_config_workers() -> Optional[int]:
    """Number of workers (chief included) in ``TF_CONFIG``, or None when it is not set."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
        cluster = cfg["cluster"]
        return len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise EngineError(
            f"TF_CONFIG is not valid: {raw[:200]!r}; expected JSON like "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
        ) from None


def choose_strategy(strategy: str = "auto", *, num_workers: int = 1) -> str:
    """Resolve ``auto`` (multi_worker when TF_CONFIG lists several workers or num_workers > 1,
    mirrored with several GPUs, gpu with one, else cpu) and validate the choice."""
    if strategy not in STRATEGIES:
        raise EngineError(f"--strategy {strategy!r} is not known; expected one of {', '.join(STRATEGIES)}")
    workers = tf_config_workers()
    if strategy == "multi_worker" or (strategy == "auto" and (num_workers > 1 or (workers or 0) > 1)):
        if workers is None:
            raise EngineError(
                "--strategy multi_worker needs the TF_CONFIG environment variable (cluster and this "
                "worker's task), e.g. TF_CONFIG='{\"cluster\": {\"worker\": [\"10.0.0.1:2222\", "
                "\"10.0.0.2:2222\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}'"
            )
        if num_workers > 1 and workers != num_workers:
            raise EngineError(f"--num_workers {num_workers} but TF_CONFIG lists {workers} workers")
        return "multi_worker"
    if strategy != "auto":
        return strategy
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return "mirrored" if len(gpus) > 1 else "gpu" if gpus else "cpu"


def make_strategy(params, strategy: str = "auto", *, tpu_name: Optional[str] = None, num_workers: int = 1,
                  mixed_precision: bool = False):
    """Create the tf.distribute strategy (via Model Garden's `distribute_utils`), record it in
    ``params.runtime`` and set the mixed-precision policy. Returns ``(strategy_obj, name)``.

    Must run before any other TensorFlow work in the process: a multi-worker strategy configures
    collective ops at start-up.
    """
    from official.common import distribute_utils
    from official.modeling import performance

    name = choose_strategy(strategy, num_workers=num_workers)
    runtime = params.runtime
    num_gpus = 0
    if name in ("gpu", "mirrored"):
        import tensorflow as tf

        num_gpus = len(tf.config.list_physical_devices("GPU"))
        if num_gpus == 0:
            raise EngineError(f"--strategy {name} but TensorFlow sees no GPU; use --strategy cpu or auto")
    mg_name = {"cpu": "one_device", "gpu": "one_device", "mirrored": "mirrored",
               "multi_worker": "multi_worker_mirrored", "tpu": "tpu"}[name]
    if name == "gpu":
        num_gpus = 1
    tpu = tpu_name or runtime.tpu
    if name == "tpu" and not tpu:
        raise EngineError("--strategy tpu needs --tpu_name (the TPU name or grpc:// address)")
    try:
        obj = distribute_utils.get_distribution_strategy(
            distribution_strategy=mg_name, num_gpus=num_gpus, all_reduce_alg=runtime.all_reduce_alg,
            num_packs=runtime.num_packs, tpu_address=tpu if name == "tpu" else None)
    except (ValueError, RuntimeError) as e:
        raise EngineError(f"cannot create the {name} distribution strategy: {e}") from None
    dtype = runtime.mixed_precision_dtype
    if mixed_precision:
        dtype = "float16" if name in ("gpu", "mirrored") or (name == "multi_worker" and _has_gpu()) else "bfloat16"
    params.override({"runtime": {"distribution_strategy": mg_name, "num_gpus": num_gpus,
                                 "tpu": tpu if name == "tpu" else runtime.tpu,
                                 "mixed_precision_dtype": dtype}}, is_strict=True)
    if dtype:
        performance.set_mixed_precision_policy(dtype)
    logger.info("strategy %s (%s), %d replica(s), precision %s", name, mg_name,
                obj.num_replicas_in_sync, dtype or "float32")
    return obj, name


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def is_chief(strategy_obj) -> bool:
    return bool(getattr(strategy_obj.extended, "should_checkpoint", True))


def count_records(pattern) -> int:
    """Number of examples in the TFRecord files matching ``pattern`` (str, glob or list)."""
    import tensorflow as tf

    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    files = []
    for p in patterns:
        for part in str(p).split(","):
            files.extend(tf.io.gfile.glob(part.strip()))
    if not files:
        raise EngineError(f"no TFRecord file matches {patterns!r} (task.validation_data.input_path)")
    return sum(1 for _ in tf.data.TFRecordDataset(sorted(files)))


def prepare_validation(params, logging_dir: str) -> None:
    """Make Model Garden's COCO evaluation work from the val records alone.

    With ``include_mask`` and no ``task.annotation_file``, Model Garden writes
    ``logging_dir/annotation.json`` from ``validation_data`` (it needs ``num_examples``) and
    reuses an existing file. We count the examples when the config does not say, and remove a
    stale ``annotation.json`` written for other val records (fingerprint in a side file), so the
    metrics always match the records named in the config.
    """
    import tensorflow as tf

    task = params.task
    vd = task.validation_data
    if not vd.input_path:
        raise ConfigError("task.validation_data.input_path is empty: evaluation needs val records")
    if getattr(task, "annotation_file", None) or not getattr(task.model, "include_mask", False):
        return  # COCO metrics only: a semantic-segmentation task scores IoU straight from its records
    if vd.num_examples is None or vd.num_examples <= 0:
        n = count_records(vd.input_path)
        params.override({"task": {"validation_data": {"num_examples": n}}}, is_strict=True)
        logger.info("task.validation_data.num_examples not set: counted %d val examples", n)
    files = []
    for p in ([vd.input_path] if isinstance(vd.input_path, str) else list(vd.input_path)):
        for part in str(p).split(","):
            files.extend(sorted(tf.io.gfile.glob(part.strip())))
    h = hashlib.sha1()
    for f in files:
        st = tf.io.gfile.stat(f)
        h.update(f"{io.abspath(f)}|{st.length}|{st.mtime_nsec}\n".encode())
    h.update(f"n={vd.num_examples}".encode())
    fingerprint = h.hexdigest()
    ann = io.join(logging_dir, "annotation.json")
    side = ann + ".source"
    old = None
    if tf.io.gfile.exists(side):
        with tf.io.gfile.GFile(side) as f:
            old = f.read().strip()
    if tf.io.gfile.exists(ann) and old != fingerprint:
        logger.info("val records changed: rewriting %s", ann)
        tf.io.gfile.remove(ann)
    tf.io.gfile.makedirs(logging_dir)
    with tf.io.gfile.GFile(side, "w") as f:
        f.write(fingerprint + "\n")


class StdoutToLog(_stdio.TextIOBase):
    """A stdout replacement sending lines to a logger: Orbit `print`s every loop and
    pycocotools prints its tables, which would tear through the CLI's progress bar. Use with
    ``contextlib.redirect_stdout(StdoutToLog(logger))``."""

    def __init__(self, log: logging.Logger, level: int = logging.INFO):
        self.log = log
        self.level = level

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        for line in s.splitlines():
            if line.strip():
                self.log.log(self.level, "%s", line.rstrip())
        return len(s)


def latest_checkpoint(directory: str) -> Tuple[Optional[str], int]:
    """``(path, global_step)`` of the newest checkpoint in ``directory`` or ``(None, 0)``."""
    import tensorflow as tf
    from official.core import train_utils

    path = tf.train.latest_checkpoint(directory) if tf.io.gfile.isdir(directory) else None
    if not path:
        return None, 0
    return path, int(train_utils.read_global_step_from_checkpoint(path))


def resolve_checkpoint(path: str, what: str = "--checkpoint") -> str:
    """A checkpoint prefix from a directory (its latest checkpoint) or a prefix; EngineError if none."""
    import tensorflow as tf

    path = io.check_path(path, what)
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if not latest:
            raise EngineError(f"{what} {path}: directory has no checkpoint (no 'checkpoint' file / ckpt-N.index)")
        return latest
    if tf.io.gfile.exists(path + ".index"):
        return path
    raise EngineError(f"{what} {path}: not a checkpoint prefix (no {path}.index) nor a directory with checkpoints")


def metrics_by_name(logs: Mapping[str, Any]) -> Dict[str, float]:
    """Model Garden's eval logs as tfod-seg metric names: ``box_AP``, ``box_AP50``, ...,
    ``mask_AP``, ``mask_AP50``, ... (COCO names with a ``box_``/``mask_`` prefix), plus any
    other scalar (e.g. ``validation_loss``) under its own name."""
    import numpy as np

    out: Dict[str, float] = {}
    for k, v in logs.items():
        try:
            arr = np.asarray(v)
        except Exception:  # pragma: no cover - non-numeric log entries
            continue
        if arr.ndim != 0 or arr.dtype.kind not in "fiu":
            continue
        value = float(arr)
        if k.startswith("mask_"):
            out[k] = value
        elif k.startswith(("AP", "AR")):
            out["box_" + k] = value
        else:
            out[k] = value
    return out
