"""Train a Mask R-CNN experiment on TF Model Garden (`official.core.train_lib`).

`train` is `python -m official.vision.train --mode=train` as a library call with the behaviour
TFOD2 users expect:

* **Resume**: checkpoints live in ``model_dir``; re-running continues from the latest one.
  ``num_train_steps`` is the *total* (``trainer.train_steps``), not "more steps"; when the
  latest checkpoint already reached it, nothing is trained and the result says so.
* **Progress**: after each Model Garden loop (``trainer.steps_per_loop`` steps) a
  `tfod_seg.engines.progress.TrainEvent` (step, loss, steps/s, ETA) goes to ``on_progress``.
  TensorBoard summaries are Model Garden's, in ``model_dir/train``.
* **NaN / inf loss** stops training with an `EngineError` naming the step range and the last good
  checkpoint, which is kept: the check is an Orbit train action, and Orbit runs train actions
  *before* it saves a checkpoint, so a diverged state is never written. (Model Garden's own
  ``trainer.recovery_max_trials`` > 0 still works: then its recovery action restores the last
  checkpoint and retries, and its final failure becomes the same `EngineError`.)
* **Config actually used**: ``model_dir/params.yaml`` (Model Garden's `serialize_config`, the
  complete experiment), plus the original file copied beside it and ``model_dir/train_run.json``
  (flags, strategy, steps).
* **Strategy**: auto | cpu | gpu | mirrored | multi_worker (reads ``TF_CONFIG``) | tpu, through
  Model Garden's `distribute_utils`; ``mixed_precision`` sets float16 on GPU, bfloat16 elsewhere.
* **Same loop as Model Garden's runner**: the task, trainer, Orbit controller, summaries and
  input pipeline are Model Garden's, built from the same config; checkpoints are written
  asynchronously as ``official.vision.train`` does by default. What tfod-seg adds per loop is the
  two train actions above (under a millisecond); no thread, determinism or tf.data setting.
  The audit and measurements: docs/benchmarks.md, "Training wrapper and input pipeline".
* **Transfer learning**: ``init_checkpoint`` (a checkpoint prefix or a directory, e.g. another
  run's ``model_dir``) restores the backbone and FPN decoder only
  (``task.init_checkpoint_modules: [backbone, decoder]``), so the heads are new and the number
  of classes may differ. It applies only when ``model_dir`` has no checkpoint yet.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from typing import Any, Callable, Dict, Optional, Tuple

from tfod_seg import io
from tfod_seg.engines.base import TrainSummary
from tfod_seg.engines.budget import BestTracker, EvalEvery, parse_duration
from tfod_seg.engines.garden import loop, runtime
from tfod_seg.engines.progress import TrainEvent
from tfod_seg.errors import ConfigError, EngineError

logger = logging.getLogger(__name__)


class _NonFiniteLoss(Exception):
    pass


class _ProgressAction:
    """Orbit train action: turns each loop's output into a TrainEvent."""

    def __init__(self, total_steps: int, on_progress: Optional[Callable[[TrainEvent], None]]):
        self.total_steps = total_steps
        self.on_progress = on_progress
        self.global_step = None  # set once the trainer exists
        self.last_step = 0
        self.last_time = time.perf_counter()
        self.last_loss: Optional[float] = None
        self.last_rate: Optional[float] = None
        self.deadline: Optional[float] = None  # clock() reading at which a time budget ends
        self.clock: Callable[[], float] = time.monotonic

    def start(self, global_step) -> None:
        self.global_step = global_step
        self.last_step = int(global_step.numpy())
        self.last_time = time.perf_counter()
        if self.on_progress:
            self.on_progress(TrainEvent(step=self.last_step, total_steps=self.total_steps))

    def __call__(self, output) -> None:
        import numpy as np

        now = time.perf_counter()
        step = int(self.global_step.numpy())
        done = step - self.last_step
        rate = done / (now - self.last_time) if done > 0 and now > self.last_time else None
        self.last_step, self.last_time = step, now
        loss = float(np.asarray(output["training_loss"])) if "training_loss" in output else None
        self.last_loss = loss
        self.last_rate = rate
        if self.on_progress is None:
            return
        extra = {}
        for k, v in output.items():
            if k == "training_loss":
                continue
            arr = np.asarray(v)
            if arr.ndim == 0 and arr.dtype.kind in "fiu":
                extra[k] = float(arr)
        eta = (self.total_steps - step) / rate if rate else None
        if self.deadline is not None:  # never an ETA beyond the budget
            left = max(0.0, self.deadline - self.clock())
            eta = left if eta is None else min(eta, left)
        self.on_progress(TrainEvent(step=step, total_steps=self.total_steps, loss=loss,
                                    steps_per_sec=rate, eta_seconds=eta, extra=extra))


class _StopOnNonFiniteLoss:
    """Orbit train action: raise before Orbit saves a checkpoint of a diverged model."""

    def __init__(self, progress: _ProgressAction):
        self.progress = progress
        self.previous_step = progress.last_step

    def __call__(self, output) -> None:
        import numpy as np

        loss = float(np.asarray(output.get("training_loss", 0.0)))
        step = self.progress.last_step
        if not math.isfinite(loss):
            raise _NonFiniteLoss((self.previous_step, step, loss))
        self.previous_step = step


def _copy_source_config(config_path: str, model_dir: str) -> str:
    base = io.basename(config_path)
    if base == "params.yaml":
        base = "source_params.yaml"
    dest = io.join(model_dir, base)
    if io.abspath(dest) != io.abspath(config_path):
        with io.atomic_path(dest) as tmp:
            io.copy(config_path, tmp)
    return dest


def _warn_schedule(params, total: int) -> None:
    lr = params.trainer.optimizer_config.learning_rate
    kind = lr.type
    sub = getattr(lr, kind, None) if kind else None
    decay = getattr(sub, "decay_steps", None)
    if decay and decay < total:
        logger.warning("learning-rate schedule %s ends at step %d but training runs to %d: the last %d steps "
                       "use the final learning rate (set trainer.optimizer_config.learning_rate.%s.decay_steps)",
                       kind, decay, total, total - decay, kind)


def _schedule_steps(params) -> int:
    """The step at which the config's learning-rate schedule reaches its end value: its
    ``decay_steps`` (cosine, polynomial, ...), else ``trainer.train_steps`` (e.g. stepwise)."""
    lr = params.trainer.optimizer_config.learning_rate
    sub = getattr(lr, lr.type, None) if lr.type else None
    decay = getattr(sub, "decay_steps", None)
    return int(decay) if decay and decay > 0 else int(params.trainer.train_steps)


@dataclasses.dataclass
class _Plan:
    """What a training run will do, decided before the model is built."""

    config_path: str
    model_dir: str
    experiment: str
    params: Any
    total: int
    strategy_obj: Any
    strategy_name: str
    latest: Optional[str]
    latest_step: int
    base_steps: int  # where the config's learning-rate schedule ends (`_schedule_steps`)

    def summary(self, **fields) -> TrainSummary:
        return TrainSummary(engine="garden", model_dir=self.model_dir, experiment=self.experiment,
                            strategy=self.strategy_name, total_steps=self.total,
                            params_yaml=io.join(self.model_dir, "params.yaml"), **fields)


def _step_overrides(num_train_steps: Optional[int], checkpoint_every_n: Optional[int]) -> Dict[str, object]:
    overrides: Dict[str, object] = {}
    if num_train_steps is not None and int(num_train_steps) <= 0:
        raise ConfigError(f"--num_train_steps must be a positive total step count, got {num_train_steps}")
    if checkpoint_every_n is not None:
        if int(checkpoint_every_n) <= 0:
            raise ConfigError(f"--checkpoint_every_n must be positive, got {checkpoint_every_n}")
        overrides["trainer.checkpoint_interval"] = int(checkpoint_every_n)
    return overrides


def _plan(config_path: str, model_dir: str, *, num_train_steps, checkpoint_every_n, strategy, tpu_name,
          num_workers, mixed_precision) -> _Plan:
    """Load the config with the flags' overrides, create the strategy, find the checkpoint to resume."""
    experiment, params = runtime.load_params(config_path, _step_overrides(num_train_steps, checkpoint_every_n)
                                             or None)
    base_steps = _schedule_steps(params)
    if num_train_steps is not None:
        params.override({"trainer": {"train_steps": int(num_train_steps)}}, is_strict=True)
    total = int(params.trainer.train_steps)
    if total <= 0:
        raise ConfigError(f"{config_path}: trainer.train_steps is {total}; give --num_train_steps or set it")
    # The strategy first: a multi-worker strategy must be created before other TensorFlow work.
    strategy_obj, strategy_name = runtime.make_strategy(
        params, strategy, tpu_name=tpu_name, num_workers=num_workers, mixed_precision=mixed_precision)
    io.makedirs(model_dir, "--model_dir")
    latest, latest_step = runtime.latest_checkpoint(model_dir)
    return _Plan(config_path, model_dir, experiment, params, total, strategy_obj, strategy_name, latest,
                 latest_step, base_steps)


def _apply_init_checkpoint(plan: _Plan, init_checkpoint: Optional[str]) -> None:
    if not init_checkpoint:
        return
    if plan.latest:
        logger.warning("init_checkpoint %s ignored: %s already has checkpoint %s, resuming from it",
                       init_checkpoint, plan.model_dir, plan.latest)
        return
    init = runtime.resolve_checkpoint(init_checkpoint, "--checkpoint")
    plan.params.override({"task": {"init_checkpoint": init, "init_checkpoint_modules": ["backbone", "decoder"]}},
                         is_strict=True)
    logger.info("transfer learning: backbone + decoder from %s, heads new", init)


def _record_run(plan: _Plan, settings: loop.LoopSettings) -> Optional[str]:
    """params.yaml, a copy of the config file and train_run.json in model_dir (chief only)."""
    from official.core import train_utils

    if not runtime.is_chief(plan.strategy_obj):
        return None
    params = plan.params
    train_utils.serialize_config(params, plan.model_dir)  # model_dir/params.yaml
    config_copy = _copy_source_config(plan.config_path, plan.model_dir)
    io.atomic_write_json(io.join(plan.model_dir, "train_run.json"), {
        "engine": "garden", "experiment": plan.experiment, "config": io.abspath(plan.config_path),
        "num_train_steps": plan.total, "checkpoint_every_n": params.trainer.checkpoint_interval,
        "strategy": plan.strategy_name,
        "num_workers": plan.strategy_obj.num_replicas_in_sync if plan.strategy_name == "multi_worker" else 1,
        "mixed_precision": params.runtime.mixed_precision_dtype,
        "init_checkpoint": params.task.init_checkpoint or None, "resumed_from": plan.latest,
        **({"loop": loop.describe_settings(settings)} if settings.active else {}),
    })
    return config_copy


def _build(plan: _Plan, on_progress, mode: str = "train") -> Tuple[Any, _ProgressAction]:
    """Model Garden's task and Orbit runner, with the progress and NaN-check train actions."""
    from official.core import task_factory, train_lib

    quiet = runtime.StdoutToLog(logging.getLogger("official.orbit"))  # Orbit prints every loop
    with plan.strategy_obj.scope(), contextlib.redirect_stdout(quiet):
        task = task_factory.get_task(plan.params.task, logging_dir=plan.model_dir)
    progress = _ProgressAction(plan.total, on_progress)
    actions = [progress]
    nan_check = None
    if plan.params.trainer.recovery_max_trials <= 0:
        nan_check = _StopOnNonFiniteLoss(progress)
        actions.append(nan_check)
    with contextlib.redirect_stdout(quiet):
        runner = train_lib.OrbitExperimentRunner(
            distribution_strategy=plan.strategy_obj, task=task, mode=mode, params=plan.params,
            model_dir=plan.model_dir, train_actions=actions, enable_async_checkpointing=runtime.ASYNC_CHECKPOINTS)
    progress.start(runner.trainer.global_step)
    if nan_check is not None:
        nan_check.previous_step = progress.last_step
    return runner, progress


def _loop_settings(plan: _Plan, clock, started_at: float, *, num_train_steps, time_budget, eval_every, patience,
                   min_delta, eval_metric, budget_reserve=None) -> loop.LoopSettings:
    """Budget, resumed schedule, evaluation cadence and early stopping of this run."""
    every = EvalEvery.parse(eval_every)
    if (patience is not None or min_delta) and every is None:
        raise ConfigError("--patience and --min_delta need --eval_every (evaluations to compare)")
    budget = parse_duration(time_budget) if time_budget is not None else None
    settings = loop.LoopSettings(started_at=started_at, base_steps=plan.base_steps, time_budget=budget,
                                 max_total=num_train_steps if budget else plan.total, eval_every=every, clock=clock,
                                 reserve=budget_reserve)
    saved = loop.read_schedule(plan.model_dir) if plan.latest else None
    if saved and num_train_steps is None:  # resume keeps the schedule of the run it resumes
        settings.fixed_total, settings.base_steps = int(saved["total_steps"]), int(saved["base_steps"])
        plan.total = settings.fixed_total
    elif budget and num_train_steps is None:
        plan.total = max(plan.total, plan.latest_step + 1)  # a first guess; the budget fits the real total
    if every:
        mode = "min" if "loss" in eval_metric else "max"
        settings.tracker = BestTracker(metric=eval_metric, mode=mode, patience=patience, min_delta=float(min_delta))
        best = loop.read_best(plan.model_dir)
        if best and best.get("metric") == eval_metric:
            settings.tracker.best, settings.tracker.best_step = float(best["value"]), int(best["step"])
        plan.params.override({"trainer": {
            "best_checkpoint_export_subdir": loop.BEST_DIR, "best_checkpoint_eval_metric": loop.mg_metric_name(eval_metric),
            "best_checkpoint_metric_comp": "lower" if mode == "min" else "higher"}}, is_strict=True)
        runtime.prepare_validation(plan.params, plan.model_dir)
    return settings


def _wait_for_checkpoint(runner) -> None:
    """Let an asynchronous checkpoint write still running finish (an exception from a train
    action leaves ``controller.train`` before Orbit's own wait)."""
    manager = runner.checkpoint_manager
    if manager is not None:
        manager.sync()


def _flush_summaries(controller) -> None:
    """Write Orbit's buffered TensorBoard summaries now: they must not depend on the writers'
    destructors, which the console command skips (`tfod_seg.cli.console_main`)."""
    for manager in (controller.summary_manager, controller.eval_summary_manager):  # may be one object: a no-op
        manager.flush()


def _execute(plan: _Plan, runner, progress: _ProgressAction, settings: loop.LoopSettings) -> loop.LoopResult:
    """Train (one Model Garden call, or `loop.run_loop` with a budget or evaluations); a NaN/inf
    loss or Model Garden's recovery giving up → `EngineError`."""
    quiet = runtime.StdoutToLog(logging.getLogger("official.orbit"))
    try:
        if settings.active:
            return loop.run_loop(plan, runner, settings, quiet, progress)
        with plan.strategy_obj.scope(), contextlib.redirect_stdout(quiet):
            runner.controller.train(steps=plan.total)
        return loop.LoopResult(int(runner.trainer.global_step.numpy()), plan.total, "total steps reached")
    except _NonFiniteLoss as e:
        first, last, loss = e.args[0]
        _wait_for_checkpoint(runner)
        good, good_step = runtime.latest_checkpoint(plan.model_dir)
        kept = f"last good checkpoint {good} (step {good_step}) kept" if good else "no checkpoint had been saved yet"
        raise EngineError(
            f"training loss became {loss} between steps {first} and {last}: stopped; {kept}. "
            f"Lower the learning rate (trainer.optimizer_config.learning_rate) or check the data, then re-run "
            f"to resume from the last good checkpoint"
        ) from None
    except RuntimeError as e:
        if "loss value" in str(e):  # Model Garden's RecoveryCondition gave up
            _wait_for_checkpoint(runner)
            good, good_step = runtime.latest_checkpoint(plan.model_dir)
            raise EngineError(f"training stopped by Model Garden's loss check: {e}; last checkpoint {good} "
                              f"(step {good_step})") from None
        raise


def train(config_path, model_dir, *, num_train_steps: Optional[int] = None,
          checkpoint_every_n: Optional[int] = None, strategy: str = "auto", tpu_name: Optional[str] = None,
          num_workers: int = 1, mixed_precision: bool = False, init_checkpoint: Optional[str] = None,
          time_budget=None, eval_every=None, patience: Optional[int] = None, min_delta: float = 0.0,
          eval_metric: str = "mask_AP", on_progress: Optional[Callable[[TrainEvent], None]] = None,
          budget_reserve: Optional[Callable[[Optional[float]], float]] = None,
          clock: Callable[[], float] = time.monotonic) -> TrainSummary:
    """Train the experiment ``config_path`` into ``model_dir`` up to ``num_train_steps`` total steps.

    ``num_train_steps`` and ``checkpoint_every_n`` override ``trainer.train_steps`` and
    ``trainer.checkpoint_interval``. ``time_budget`` (seconds, or ``"8m"``) fits the total
    step count and the learning-rate schedule to the rate measured after warm-up so training
    ends inside it (with ``num_train_steps``: whichever ends first). ``eval_every`` (steps, or a
    duration such as ``"2m"``) evaluates on the val records during training and keeps the best
    checkpoint by ``eval_metric`` in ``model_dir/best/`` (``best.json``); ``patience`` stops
    after that many evaluations without an improvement of at least ``min_delta``. Both paths
    may be URLs (``gs://``). ``budget_reserve(steps_per_sec)`` gives seconds of the budget to
    leave for work after training (the demo's later stages); ``clock`` (seconds) times the
    budget (tests pass a fake one).

    Returns a `TrainSummary` (``already_done`` is True when the latest checkpoint had already
    reached ``total_steps``; ``stop_reason`` says why training stopped).

    Raises `EngineError` for a NaN/inf loss (last good checkpoint kept), a bad strategy or
    checkpoint, and `ConfigError` for a bad config.
    """
    t_start, started_at = time.perf_counter(), clock()
    config_path, model_dir = io.check_path(config_path, "config"), io.check_path(model_dir, "--model_dir")
    plan = _plan(config_path, model_dir, num_train_steps=num_train_steps, checkpoint_every_n=checkpoint_every_n,
                 strategy=strategy, tpu_name=tpu_name, num_workers=num_workers, mixed_precision=mixed_precision)
    settings = _loop_settings(plan, clock, started_at, num_train_steps=num_train_steps, time_budget=time_budget,
                              eval_every=eval_every, patience=patience, min_delta=min_delta, eval_metric=eval_metric,
                              budget_reserve=budget_reserve)
    if plan.latest and plan.latest_step >= plan.total:
        logger.info("%s is at step %d, which already reaches num_train_steps=%d (the total): nothing to train",
                    plan.latest, plan.latest_step, plan.total)
        return plan.summary(start_step=plan.latest_step, final_step=plan.latest_step, already_done=True,
                            train_seconds=time.perf_counter() - t_start, checkpoint=plan.latest,
                            stop_reason="already at the total", best=loop.read_best(model_dir))
    _apply_init_checkpoint(plan, init_checkpoint)
    if not (settings.time_budget or settings.fixed_total):  # a budget fits the schedule itself
        _warn_schedule(plan.params, plan.total)
    plan.params.validate()
    plan.params.lock()
    config_copy = _record_run(plan, settings)
    runner, progress = _build(plan, on_progress, "train_and_eval" if settings.eval_every else "train")
    if settings.time_budget:
        progress.deadline, progress.clock = started_at + settings.time_budget, clock
    start_step = progress.last_step
    logger.info("training %s from step %d to %d in %s", plan.experiment, start_step, plan.total, model_dir)
    t_train = time.perf_counter()
    done = _execute(plan, runner, progress, settings)
    _flush_summaries(runner.controller)
    ckpt = runtime.latest_checkpoint(model_dir)[0] if runtime.is_chief(plan.strategy_obj) else None
    plan.total = done.total_steps
    return plan.summary(start_step=start_step, final_step=done.final_step, trained_steps=done.final_step - start_step,
                        final_loss=progress.last_loss, steps_per_sec=progress.last_rate,
                        train_seconds=time.perf_counter() - t_train, checkpoint=ckpt, config_copy=config_copy,
                        stop_reason=done.stop_reason, time_budget_seconds=settings.time_budget,
                        measured_steps_per_sec=done.measured_steps_per_sec, evaluations=len(done.evaluations),
                        best=done.best)
