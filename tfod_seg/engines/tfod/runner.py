"""`run`: train, evaluate or export with the real TFOD2 in its own interpreter.

    from tfod_seg.engines import tfod
    tfod.run("train", {"pipeline_config_path": "pipeline.config", "model_dir": "runs/a",
                       "num_train_steps": 2000, "checkpoint_every_n": 500},
             on_progress=print)

``flags`` use TFOD2's names and are passed to `model_main_tf2` (train, evaluate) or
`exporter_main_v2` (export); `None` values are left out. A few tfod-seg-only keys steer the
launcher: ``once`` (evaluate the latest checkpoint and exit), ``steps_per_iteration`` and
``log_every`` (train; TFOD2 hard-codes 100 for both).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from typing import Callable, Dict, List, Optional

from tfod_seg.errors import EngineError, UserError

logger = logging.getLogger(__name__)

LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py")

# TFOD2 flags accepted per mode (model_main_tf2.py, exporter_main_v2.py).
TRAIN_FLAGS = ("pipeline_config_path", "model_dir", "num_train_steps", "checkpoint_every_n",
               "sample_1_of_n_eval_examples", "sample_1_of_n_eval_on_train_examples",
               "eval_on_train_data", "use_tpu", "tpu_name", "num_workers", "record_summaries",
               "config_override")
EVAL_FLAGS = ("pipeline_config_path", "model_dir", "checkpoint_dir", "eval_timeout", "num_train_steps",
              "sample_1_of_n_eval_examples", "sample_1_of_n_eval_on_train_examples", "eval_on_train_data",
              "use_tpu", "config_override")
EXPORT_FLAGS = ("pipeline_config_path", "trained_checkpoint_dir", "output_directory", "input_type",
                "config_override", "use_side_inputs", "side_input_shapes", "side_input_types",
                "side_input_names")
MODE_FLAGS = {"train": TRAIN_FLAGS, "evaluate": EVAL_FLAGS, "export": EXPORT_FLAGS}
REQUIRED = {"train": ("pipeline_config_path", "model_dir"),
            "evaluate": ("pipeline_config_path", "checkpoint_dir"),
            "export": ("pipeline_config_path", "trained_checkpoint_dir", "output_directory")}
# tfod-seg-only keys, turned into launcher options.
LAUNCHER_KEYS = {"train": ("steps_per_iteration", "log_every"), "evaluate": ("once",), "export": ()}
LOG_NAMES = {"train": "train.log", "evaluate": "evaluate.log", "export": "export.log"}
# model_main_tf2 flags that only make sense for one of its two modes.
_TRAIN_ONLY = ("checkpoint_every_n", "num_workers", "tpu_name", "record_summaries")


def build_command(python: str, mode: str, flags: Dict[str, object]) -> List[str]:
    """The command line that runs the launcher for ``mode`` with ``flags`` (validated)."""
    if mode not in MODE_FLAGS:
        raise UserError(f"tfod engine: mode {mode!r} is not one of train, evaluate, export")
    allowed = MODE_FLAGS[mode] + LAUNCHER_KEYS[mode]
    unknown = sorted(k for k, v in flags.items() if k not in allowed and v is not None)
    if unknown:
        raise UserError(f"tfod engine ({mode}): unknown flag(s) {', '.join('--' + k for k in unknown)}; "
                        f"{mode} takes {', '.join('--' + k for k in allowed)}")
    missing = [k for k in REQUIRED[mode] if flags.get(k) in (None, "")]
    if missing:
        raise UserError(f"tfod engine ({mode}): missing {', '.join('--' + k for k in missing)}")
    own: List[str] = []
    for key in LAUNCHER_KEYS[mode]:
        value = flags.get(key)
        if value is None or value is False:
            continue
        own.append(f"--{key}" if value is True else f"--{key}={int(value)}")
    passthrough: List[str] = []
    for key in MODE_FLAGS[mode]:
        value = flags.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            passthrough.append(f"--{key}" if value else f"--no{key}")
        else:
            passthrough.append(f"--{key}={os.fspath(value) if isinstance(value, os.PathLike) else value}")
    return [python, LAUNCHER, mode, *own, "--", *passthrough]


def _default_log_path(mode: str, flags: dict) -> str:
    base = {"train": "model_dir", "evaluate": "model_dir", "export": "output_directory"}[mode]
    d = flags.get(base) or flags.get("checkpoint_dir") or "."
    return os.path.join(os.fspath(d), LOG_NAMES[mode])


def _log_every(total_steps: Optional[int]) -> int:
    """About 100 progress events per run, at least every step, at most every 100 (TFOD2's)."""
    if not total_steps:
        return 10
    return max(1, min(100, total_steps // 100))


def run(mode: str, flags: dict, *, tfod_python: Optional[str] = None,
        on_progress: Optional[Callable] = None, log_path: Optional[str] = None) -> int:
    """Run TFOD2 ``mode`` ("train", "evaluate", "export") with TFOD2-named ``flags``; return 0.

    Checks the known traps first (`tfod_seg.engines.tfod.traps`), finds the TFOD2 interpreter
    (`tfod_seg.engines.tfod.interpreter.find_tfod_python`), streams the child's log to
    ``log_path`` (default ``MODEL_DIR/train.log``, ``MODEL_DIR/evaluate.log``,
    ``OUTPUT_DIRECTORY/export.log``) and, for train, calls ``on_progress(TrainEvent)`` per
    logged step. Evaluate writes the COCO metrics it parsed to ``metrics.json`` beside the log;
    export copies the config's label map into the export. A failure raises `EngineError` with
    the cause in a line or two and the log's path.
    """
    from tfod_seg.engines.tfod import traps
    from tfod_seg.engines.tfod.interpreter import find_tfod_python
    from tfod_seg.engines.tfod.logparse import TrainLogParser, failure_cause, parse_eval_metrics

    flags = {k: v for k, v in dict(flags).items() if v is not None}
    if mode == "evaluate":
        flags.setdefault("model_dir", flags.get("checkpoint_dir"))
        for key in _TRAIN_ONLY:
            if key in flags:
                raise UserError(f"tfod engine (evaluate): --{key} is a training flag")
    if mode == "train" and "checkpoint_dir" in flags:
        raise UserError("tfod engine (train): --checkpoint_dir makes model_main_tf2 evaluate instead of "
                        "train; use `tfod-seg evaluate` for that")
    build_command(sys.executable, mode, flags)  # validate the flags before anything slow
    checked = traps.check_before(mode, flags)
    for note in checked["notes"]:
        logger.warning("%s", note)
    total_steps = checked["total_steps"]
    if mode == "train" and "log_every" not in flags:
        flags["log_every"] = _log_every(total_steps)

    python = find_tfod_python(tfod_python)
    cmd = build_command(python, mode, flags)
    log_path = os.fspath(log_path) if log_path else _default_log_path(mode, flags)
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    logger.info("running TFOD2 %s with %s; full log: %s", mode, python, log_path)

    parser = TrainLogParser(total_steps or 0, on_progress) if mode == "train" else None
    tail: List[str] = []
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    env["PYTHONUNBUFFERED"] = "1"
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                text=True, encoding="utf-8", errors="replace", bufsize=1)
        try:
            for line in proc.stdout:  # type: ignore[union-attr]
                log.write(line)
                tail.append(line.rstrip("\n"))
                if len(tail) > 2000:
                    del tail[:1000]
                if parser is not None:
                    parser.feed(line)
            code = proc.wait()
        except BaseException:  # KeyboardInterrupt: do not leave TFOD2 training in the background
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        finally:
            log.flush()
    if parser is not None:
        parser.close()

    if code != 0:
        if code < 0:
            cause = f"killed by signal {-code}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        else:
            cause = failure_cause(tail) or f"exited with status {code}"
        from tfod_seg.engines.tfod.launcher import READY_MARKER

        if not any(READY_MARKER in line for line in tail):
            cause += f"\n  (the TFOD2 interpreter {python} failed before TFOD2 started; rebuild it with `make tfod-env`)"
        raise EngineError(f"TFOD2 {mode} failed: {cause}\n  full log: {log_path}")

    if mode == "evaluate":
        metrics = parse_eval_metrics(tail)
        if metrics:
            from tfod_seg.io import atomic_write_json

            atomic_write_json(os.path.join(os.path.dirname(os.path.abspath(log_path)), "metrics.json"), metrics)
    if mode == "export":
        _copy_label_map(flags)
    return 0


def _copy_label_map(flags: dict) -> None:
    """Put the config's label map beside the export, where inference looks for it."""
    from tfod_seg.pbtxt import PbtxtDocument
    from tfod_seg.config.generate import input_reader_paths
    from tfod_seg.io import atomic_write_bytes

    doc = PbtxtDocument.load(flags["pipeline_config_path"])
    out = os.path.join(os.fspath(flags["output_directory"]), "label_map.pbtxt")
    for reader in reversed(input_reader_paths(doc)):  # eval readers first
        path = doc.get(f"{reader}.label_map_path", None)
        if path and os.path.isfile(str(path)):
            with open(str(path), "rb") as f:
                atomic_write_bytes(out, f.read())
            return
    logger.warning("no label map found through the config's label_map_path; %s not written", out)
