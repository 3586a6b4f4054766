"""The training loop for time budgets and evaluation during training (garden engine).

A plain run is one ``controller.train(steps=total)`` call (Model Garden's own loop). With a
time budget or ``eval_every``, `run_loop` drives the Orbit controller one loop
(``trainer.steps_per_loop`` steps) at a time instead:

* **time budget**: after each loop it measures steps/s (the session's first loop, which traces
  the graph, is left out; the last few loops count, so a machine that slows down is followed),
  picks the total step count that ends inside the budget (`budget.fit_total_steps`, counting
  the evaluations still to come and a reserve for the last checkpoint) and refits the
  learning-rate schedule to it (`schedule.ScaledSchedule`): the run is a complete schedule.
  The chosen total goes to ``MODEL_DIR/schedule.json``, so a resumed run keeps that schedule.
* **evaluation**: every N steps or D seconds (and once at the end) the val records are
  evaluated by Model Garden's evaluator; Model Garden's `BestCheckpointExporter`
  (``trainer.best_checkpoint_export_subdir``) keeps the best checkpoint in ``MODEL_DIR/best/``
  and ``best.json`` records its step and metrics. After ``patience`` evaluations without an
  improvement of at least ``min_delta`` training stops (early stopping).

Checkpoints: Orbit's controller would wait for the checkpoint write at the end of every
``controller.train`` call (one call per loop here), so within `run_loop` the controller sees the
run's checkpoint manager without an interval (`_LoopCheckpoints`, it then never saves) and the
loop saves after each call instead, at the same cadence (``trainer.checkpoint_interval``) and
asynchronously: the write overlaps the next loop, as in a plain run. A NaN/inf loss raises in a
train action inside the call, before the loop can save. The last checkpoint is always saved
(and waited for) before returning.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import time
from typing import Any, Callable, Deque, List, Optional, Tuple

from tfod_seg import io
from tfod_seg.engines.base import EvalResult
from tfod_seg.engines.budget import BestTracker, EvalEvery, fit_total_steps
from tfod_seg.engines.garden import runtime
from tfod_seg.errors import ConfigError

logger = logging.getLogger(__name__)

SCHEDULE_FILE = "schedule.json"
BEST_DIR = "best"
BEST_FILE = "best.json"
RESERVE_SECONDS = 3.0  # kept free at the end of a budget for the last checkpoint
UNBOUNDED = 2**62  # the total of a budget-only run before the first rate measurement


@dataclasses.dataclass
class LoopSettings:
    """How `run_loop` trains: budget from ``started_at`` (a ``clock()`` reading), step limits,
    evaluation cadence and the best-metric tracker. ``clock`` is ``time.monotonic`` except in
    tests, which may give a clock that advances with the global step."""

    started_at: float
    base_steps: int  # where the config's learning-rate schedule ends (decay_steps, else train_steps)
    time_budget: Optional[float] = None
    max_total: Optional[int] = None  # --num_train_steps (None: the budget alone decides)
    fixed_total: Optional[int] = None  # a resumed budget run's total (schedule.json)
    eval_every: Optional[EvalEvery] = None
    tracker: Optional[BestTracker] = None
    clock: Callable[[], float] = time.monotonic
    #: seconds to keep free after training, given the measured steps/s (e.g. for later stages)
    reserve: Optional[Callable[[Optional[float]], float]] = None

    def reserve_seconds(self, rate: Optional[float]) -> float:
        return RESERVE_SECONDS + (self.reserve(rate) if self.reserve else 0.0)

    @property
    def active(self) -> bool:
        return bool(self.time_budget or self.fixed_total or self.eval_every)


@dataclasses.dataclass
class LoopResult:
    final_step: int
    total_steps: int
    stop_reason: str
    measured_steps_per_sec: Optional[float] = None
    evaluations: List[EvalResult] = dataclasses.field(default_factory=list)
    best: Optional[dict] = None


class _RateMeter:
    """steps/s over the last few loops, the first loop of the session (tracing) left out."""

    def __init__(self, window: int = 4):
        self.loops: Deque[Tuple[int, float]] = collections.deque(maxlen=window)
        self.seen = 0

    def add(self, steps: int, seconds: float) -> None:
        self.seen += 1
        if self.seen > 1 and steps > 0 and seconds > 0:
            self.loops.append((steps, seconds))

    @property
    def rate(self) -> Optional[float]:
        if not self.loops:
            return None
        return sum(s for s, _ in self.loops) / sum(t for _, t in self.loops)


def mg_metric_name(metric: str) -> str:
    """Model Garden's eval-log key for a tfod-seg metric name (``box_AP`` → ``AP``)."""
    return metric[len("box_"):] if metric.startswith("box_") else metric


def read_best(model_dir: str) -> Optional[dict]:
    path = io.join(model_dir, BEST_DIR, BEST_FILE)
    return io.read_json(path) if io.isfile(path) else None


def read_schedule(model_dir: str) -> Optional[dict]:
    path = io.join(model_dir, SCHEDULE_FILE)
    return io.read_json(path) if io.isfile(path) else None


class _LoopCheckpoints:
    """The run's ``tf.train.CheckpointManager`` as Orbit's controller sees it inside `run_loop`:
    no ``checkpoint_interval``, so ``controller.train`` neither saves nor has a write to wait for;
    everything else (restore, directory, sync) is the real manager's."""

    checkpoint_interval = None

    def __init__(self, manager):
        self.manager = manager

    def __getattr__(self, name):
        return getattr(self.manager, name)


class _Checkpoints:
    """Saves of `run_loop`: after each ``controller.train`` call, when the manager's interval
    says so (Orbit's own rule), written in the background."""

    def __init__(self, controller):
        import tensorflow as tf

        self.controller = controller
        self.manager = controller.checkpoint_manager
        self.options = tf.train.CheckpointOptions(enable_async=runtime.ASYNC_CHECKPOINTS)
        self.saved_step: Optional[int] = None
        if self.manager is not None and self.manager.checkpoint_interval:
            controller.checkpoint_manager = _LoopCheckpoints(self.manager)
        else:
            self.manager = None  # no checkpoints configured: nothing to take over

    def save(self, step: int, force: bool = False) -> None:
        if self.manager is None or (force and self.saved_step == step):
            return
        path = self.manager.save(checkpoint_number=step, check_interval=not force, options=self.options)
        if path is not None:
            self.saved_step = step
            logger.info("saved checkpoint to %s", path)

    def close(self) -> None:
        """Wait for the last write; give the controller its manager back."""
        if self.manager is not None:
            self.manager.sync()
            self.controller.checkpoint_manager = self.manager


class _Evaluations:
    """Evaluation during training, the best checkpoint's record and the early-stopping count."""

    def __init__(self, runner, model_dir: str, settings: LoopSettings, step: int, chief: bool):
        self.runner, self.model_dir, self.chief = runner, model_dir, chief
        self.every, self.tracker, self.clock = settings.eval_every, settings.tracker, settings.clock
        self.validation_steps = runner.params.trainer.validation_steps
        self.results: List[EvalResult] = []
        self.last_step, self.last_time, self.seconds = step, self.clock(), 0.0
        self.best = read_best(model_dir)

    def next_step(self, step: int) -> Optional[int]:
        return (step // self.every.steps + 1) * self.every.steps if self.every.steps else None

    def due(self, step: int) -> bool:
        return self.every.due(step, self.last_step, self.clock() - self.last_time)

    def run(self, step: int) -> EvalResult:
        t0 = self.clock()
        logs = self.runner.controller.evaluate(steps=self.validation_steps) or {}
        metrics = runtime.metrics_by_name({k: v for k, v in logs.items() if not k.startswith("best_")})
        self.seconds = self.clock() - t0
        self.last_step, self.last_time = step, self.clock()
        result = EvalResult(metrics=metrics, step=step, eval_seconds=self.seconds)
        self.results.append(result)
        value = metrics.get(self.tracker.metric)
        if value is None:
            raise ConfigError(f"--eval_metric {self.tracker.metric}: not among the evaluation's metrics "
                              f"({', '.join(sorted(metrics))})")
        if self.tracker.update(value, step):
            self._record_best(result)
        logger.info("step %d: %s %.4f (best %.4f at step %s; %d evaluation(s) without improvement)", step,
                    self.tracker.metric, value, self.tracker.best, self.tracker.best_step, self.tracker.bad_evals)
        return result

    def _record_best(self, result: EvalResult) -> None:
        best_dir = io.join(self.model_dir, BEST_DIR)
        import tensorflow as tf

        self.best = {"metric": self.tracker.metric, "value": result.metrics[self.tracker.metric],
                     "step": result.step, "checkpoint": tf.train.latest_checkpoint(best_dir),
                     "metrics": dict(result.metrics)}
        if self.chief:
            io.atomic_write_json(io.join(best_dir, BEST_FILE), self.best)


def _save_schedule(model_dir: str, settings: LoopSettings, total: int, rate: Optional[float], step: int) -> None:
    io.atomic_write_json(io.join(model_dir, SCHEDULE_FILE), {
        "base_steps": settings.base_steps, "total_steps": total, "steps_per_sec": rate,
        "time_budget_seconds": settings.time_budget, "fitted_at_step": step})


class _Loop:
    """State of one `run_loop` call."""

    def __init__(self, plan, runner, settings: LoopSettings, quiet, progress=None):
        from tfod_seg.engines.garden import schedule  # imports TensorFlow

        self.plan, self.runner, self.settings, self.quiet = plan, runner, settings, quiet
        self.progress = progress
        self.spl = max(1, int(plan.params.trainer.steps_per_loop))
        self.step = int(runner.trainer.global_step.numpy())
        # Before the rate is measured a budget-only run follows the config's own schedule (its length).
        guess = settings.fixed_total or settings.max_total or max(settings.base_steps, self.step + self.spl)
        self.deadline = settings.started_at + settings.time_budget if settings.time_budget else None
        # A budget alone sets no total until the rate is measured (the schedule starts on the guess).
        self.total = UNBOUNDED if (self.deadline and not settings.fixed_total and not settings.max_total) else guess
        self.chief = runtime.is_chief(plan.strategy_obj)
        self.scaled = None
        if settings.time_budget or settings.fixed_total:
            self.scaled = schedule.install(runner.trainer.optimizer, settings.base_steps, guess)
        self.meter = _RateMeter()
        self.checkpoints = _Checkpoints(runner.controller)
        self.evals = (_Evaluations(runner, plan.model_dir, settings, self.step, self.chief)
                      if settings.eval_every else None)

    def _train_to(self, target: int) -> None:
        t0 = self.settings.clock()
        with self.plan.strategy_obj.scope(), contextlib.redirect_stdout(self.quiet):
            self.runner.controller.train(steps=target, checkpoint_at_completion=False)
            self.checkpoints.save(target)  # where Orbit would save (every worker takes part, as there)
        self.meter.add(target - self.step, self.settings.clock() - t0)  # the rate counts the checkpoints
        self.step = target

    def _refit(self) -> None:
        """Budget: the total that ends in time at the measured rate; the schedule follows it."""
        rate = self.meter.rate
        if not (self.deadline and rate and not self.settings.fixed_total):
            return
        every = self.settings.eval_every
        total = fit_total_steps(
            step=self.step, remaining_seconds=self.deadline - self.settings.clock() - self.settings.reserve_seconds(rate),
            steps_per_sec=rate, max_total=self.settings.max_total,
            seconds_per_eval=self.evals.seconds if self.evals else 0.0,
            eval_every_steps=every.steps if every else None, eval_every_seconds=every.seconds if every else None)
        if total != self.total:
            logger.info("time budget: %.2f steps/s measured at step %d; total fitted to %d steps", rate, self.step,
                        total)
            self.total = total
            self.scaled.set_total(self.settings.base_steps, total)
            if self.progress is not None:
                self.progress.total_steps = total
            if self.chief:
                _save_schedule(self.plan.model_dir, self.settings, total, rate, self.step)

    def _out_of_time(self) -> bool:
        if not self.deadline or self.step >= self.total:
            return False
        loop_seconds = min(self.spl, self.total - self.step) / self.meter.rate if self.meter.rate else 0.0
        return self.settings.clock() + loop_seconds + self.settings.reserve_seconds(self.meter.rate) > self.deadline

    def run(self) -> str:
        while self.step < self.total:
            target = min(self.total, self.step + self.spl)
            if self.evals and self.evals.next_step(self.step):
                target = min(target, self.evals.next_step(self.step))
            self._train_to(target)
            self._refit()
            if self.evals and (self.evals.due(self.step) or self.step >= self.total):
                with self.plan.strategy_obj.scope(), contextlib.redirect_stdout(self.quiet):
                    self.evals.run(self.step)
                if self.settings.tracker.should_stop:
                    t = self.settings.tracker
                    return (f"early stopping: {t.metric} did not improve by >= {t.min_delta:g} in {t.patience} "
                            f"evaluation(s) (best {t.best:.4f} at step {t.best_step})")
            if self._out_of_time():
                fitted = f"fitted total {self.total}" if self.total != UNBOUNDED else "before a rate was measured"
                return f"time budget ran out at step {self.step} ({fitted})"
        if self.deadline and not self.settings.fixed_total and self.total != self.settings.max_total:
            return f"time budget: schedule fitted to {self.total} steps"
        return "total steps reached"


def run_loop(plan, runner, settings: LoopSettings, quiet, progress=None) -> LoopResult:
    """Train loop by loop under ``settings`` (see module docstring); save the last checkpoint.
    ``progress`` (the progress train action) is told the fitted total."""
    loop = _Loop(plan, runner, settings, quiet, progress)
    if loop.deadline and loop.chief and not settings.fixed_total and loop.total != UNBOUNDED:
        _save_schedule(plan.model_dir, settings, loop.total, None, loop.step)
    try:
        reason = loop.run()
        with plan.strategy_obj.scope():
            loop.checkpoints.save(loop.step, force=True)  # the last checkpoint
    finally:
        loop.checkpoints.close()
    evals = loop.evals
    return LoopResult(final_step=loop.step, total_steps=loop.total if loop.total != UNBOUNDED else loop.step,
                      stop_reason=reason,
                      measured_steps_per_sec=loop.meter.rate, evaluations=evals.results if evals else [],
                      best=evals.best if evals else None)


def describe_settings(settings: LoopSettings) -> Any:
    """A JSON-able view of the settings (for train_run.json)."""
    return {"time_budget_seconds": settings.time_budget, "max_total": settings.max_total,
            "fixed_total": settings.fixed_total,
            "eval_every": dataclasses.asdict(settings.eval_every) if settings.eval_every else None,
            "metric": settings.tracker.metric if settings.tracker else None,
            "patience": settings.tracker.patience if settings.tracker else None,
            "min_delta": settings.tracker.min_delta if settings.tracker else None}
