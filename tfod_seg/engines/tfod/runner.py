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

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

from tfod_seg import io
from tfod_seg.config.generate import input_reader_paths
from tfod_seg.engines.progress import TrainEvent
from tfod_seg.engines.tfod import traps
from tfod_seg.engines.tfod.interpreter import find_tfod_python
from tfod_seg.engines.tfod.launcher import READY_MARKER
from tfod_seg.engines.tfod.logparse import TrainLogParser, failure_cause, parse_eval_metrics
from tfod_seg.errors import EngineError, UserError
from tfod_seg.pbtxt import PbtxtDocument

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
    return io.join(os.fspath(d), LOG_NAMES[mode])


def _log_every(total_steps: Optional[int]) -> int:
    """About 100 progress events per run, at least every step, at most every 100 (TFOD2's)."""
    if not total_steps:
        return 10
    return max(1, min(100, total_steps // 100))


@dataclasses.dataclass
class RunPlan:
    """A validated TFOD2 job: the command line, where its log goes, the step it trains to."""

    mode: str
    flags: Dict[str, object]
    python: str
    cmd: List[str]
    log_path: str
    total_steps: Optional[int]


@dataclasses.dataclass
class RunOutcome:
    """What a finished TFOD2 job left: its log, the last training event, parsed eval metrics."""

    mode: str
    log_path: str
    seconds: float
    events: List[TrainEvent] = dataclasses.field(default_factory=list)
    metrics: Dict[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> Dict:
        return {"mode": self.mode, "log_path": self.log_path, "seconds": self.seconds,
                "events": [dataclasses.asdict(e) for e in self.events], "metrics": dict(self.metrics)}


def plan(mode: str, flags: dict, *, tfod_python: Optional[str] = None, log_path: Optional[str] = None) -> RunPlan:
    """Validate ``flags``, run the traps (`traps.check_before`), find the interpreter."""
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
    log_path = os.fspath(log_path) if log_path else _default_log_path(mode, flags)
    return RunPlan(mode, flags, python, build_command(python, mode, flags), log_path, total_steps)


def _stream(proc, log, tail: List[str], parser: Optional[TrainLogParser]) -> int:
    """Copy the child's output to ``log`` (and the parser), keep the last lines; its exit code."""
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            log.write(line)
            tail.append(line.rstrip("\n"))
            if len(tail) > 2000:
                del tail[:1000]
            if parser is not None:
                parser.feed(line)
        return proc.wait()
    except BaseException:  # KeyboardInterrupt: do not leave TFOD2 training in the background
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def execute(run_plan: RunPlan, on_progress: Optional[Callable] = None):
    """Spawn the launcher, stream its log to ``run_plan.log_path``; ``(exit code, last lines, events)``."""
    logger.info("running TFOD2 %s with %s; full log: %s", run_plan.mode, run_plan.python, run_plan.log_path)
    parser = TrainLogParser(run_plan.total_steps or 0, on_progress) if run_plan.mode == "train" else None
    tail: List[str] = []
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    env["PYTHONUNBUFFERED"] = "1"
    io.makedirs(io.dirname(io.abspath(run_plan.log_path)), "log folder")
    with io.open_file(run_plan.log_path, "w") as log:  # written live: users follow it with tail -f
        log.write("$ " + " ".join(run_plan.cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(run_plan.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                text=True, encoding="utf-8", errors="replace", bufsize=1)
        try:
            code = _stream(proc, log, tail, parser)
        finally:
            log.flush()
    if parser is not None:
        parser.close()
    return code, tail, (parser.events if parser is not None else [])


def report(run_plan: RunPlan, code: int, tail: List[str], events: List[TrainEvent], seconds: float) -> RunOutcome:
    """Turn a failed exit into `EngineError` (cause + log path); save eval metrics; copy the label map."""
    if code != 0:
        if code < 0:
            cause = f"killed by signal {-code}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        else:
            cause = failure_cause(tail) or f"exited with status {code}"
        if not any(READY_MARKER in line for line in tail):
            cause += (f"\n  (the TFOD2 interpreter {run_plan.python} failed before TFOD2 started; rebuild it with "
                      "`make tfod-env`)")
        raise EngineError(f"TFOD2 {run_plan.mode} failed: {cause}\n  full log: {run_plan.log_path}")
    outcome = RunOutcome(run_plan.mode, run_plan.log_path, seconds, events=list(events))
    if run_plan.mode == "evaluate":
        outcome.metrics = parse_eval_metrics(tail)
        if outcome.metrics:
            io.atomic_write_json(io.join(io.dirname(io.abspath(run_plan.log_path)), "metrics.json"), outcome.metrics)
    if run_plan.mode == "export":
        _copy_label_map(run_plan.flags)
    return outcome


def run_job(mode: str, flags: dict, *, tfod_python: Optional[str] = None, on_progress: Optional[Callable] = None,
            log_path: Optional[str] = None) -> RunOutcome:
    """`run`, returning the `RunOutcome` (what `TfodEngine` builds its results from)."""
    job = plan(mode, flags, tfod_python=tfod_python, log_path=log_path)
    t0 = time.perf_counter()
    code, tail, events = execute(job, on_progress)
    return report(job, code, tail, events, time.perf_counter() - t0)


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
    run_job(mode, flags, tfod_python=tfod_python, on_progress=on_progress, log_path=log_path)
    return 0


def _copy_label_map(flags: dict) -> None:
    """Put the config's label map beside the export, where inference looks for it."""
    doc = PbtxtDocument.load(flags["pipeline_config_path"])
    out = io.join(os.fspath(flags["output_directory"]), "label_map.pbtxt")
    for reader in reversed(input_reader_paths(doc)):  # eval readers first
        path = doc.get(f"{reader}.label_map_path", None)
        if path and io.isfile(str(path)):
            io.atomic_write_bytes(out, io.read_bytes(str(path)))
            return
    logger.warning("no label map found through the config's label_map_path; %s not written", out)
