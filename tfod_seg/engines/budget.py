"""Time budgets, evaluation cadence and early stopping: the arithmetic, free of TensorFlow.

`parse_duration` reads ``90s``, ``8m``, ``2h``, ``1h30m`` (a bare number is seconds).

`fit_total_steps` picks the total step count that ends training inside a time budget, from
the rate measured after warm-up; the engine then stretches or shrinks the learning-rate
schedule to that total (`schedule_scale`), so a budget run is a complete schedule (warm-up,
then decay to its end value), not a cut-off one.

`EvalEvery` says when to evaluate (every N steps or every D seconds); `BestTracker` keeps the
best value of a metric and counts evaluations without an improvement of at least
``min_delta`` (``patience``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Optional

from tfod_seg.errors import UserError

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|min|m|h|d)")


def parse_duration(text, flag: str = "--time_budget") -> float:
    """Seconds in ``text``: ``90`` / ``90s``, ``8m``, ``2h``, ``1h30m``, ``1.5h``; `UserError` otherwise."""
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        s = str(text).strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", s):
            seconds = float(s)
        elif s and _PART.sub("", s) == "" and _PART.match(s):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(s))
        else:
            raise UserError(f"{flag} {text!r}: expected a duration such as 90s, 8m, 2h or 1h30m")
    if not math.isfinite(seconds) or seconds <= 0:
        raise UserError(f"{flag} {text!r}: expected a positive duration")
    return seconds


def fit_total_steps(*, step: int, remaining_seconds: float, steps_per_sec: float, max_total: Optional[int] = None,
                    seconds_per_eval: float = 0.0, eval_every_steps: Optional[int] = None,
                    eval_every_seconds: Optional[float] = None) -> int:
    """The total step count that training at ``steps_per_sec`` from ``step`` reaches within
    ``remaining_seconds``, counting the evaluations that fall on the way (each
    ``seconds_per_eval``; one more at the end); never above ``max_total`` nor below ``step``."""
    if steps_per_sec <= 0:
        raise ValueError("steps_per_sec must be positive")
    total = step
    budget = max(0.0, remaining_seconds)
    for _ in range(4):  # the number of evaluations depends on the total: iterate to a fixed point
        span = total - step
        if eval_every_steps:
            evals = (total // eval_every_steps) - (step // eval_every_steps) + 1
        elif eval_every_seconds:
            evals = int((span / steps_per_sec) // eval_every_seconds) + 1
        else:
            evals = 0
        train_seconds = budget - evals * seconds_per_eval
        total = step + max(0, int(math.floor(train_seconds * steps_per_sec)))
        if max_total is not None:
            total = min(total, max_total)
    return max(step, total)


def schedule_scale(base_steps: int, total_steps: int) -> float:
    """Factor on the step fed to a schedule written for ``base_steps`` so it ends at ``total_steps``."""
    if base_steps <= 0 or total_steps <= 0:
        raise ValueError("step counts must be positive")
    return float(base_steps) / float(total_steps)


@dataclasses.dataclass
class EvalEvery:
    """When to evaluate during training: every ``steps`` steps or every ``seconds`` seconds."""

    steps: Optional[int] = None
    seconds: Optional[float] = None

    @classmethod
    def parse(cls, text, flag: str = "--eval_every") -> Optional["EvalEvery"]:
        if text in (None, "", 0, "0"):
            return None
        s = str(text).strip().lower()
        if re.fullmatch(r"\d+", s):
            return cls(steps=int(s))
        return cls(seconds=parse_duration(s, flag))

    def due(self, step: int, last_eval_step: int, seconds_since_eval: float) -> bool:
        if self.steps:
            return step // self.steps > last_eval_step // self.steps
        return seconds_since_eval >= (self.seconds or math.inf)

    def describe(self) -> str:
        return f"every {self.steps} steps" if self.steps else f"every {self.seconds:g} s"


@dataclasses.dataclass
class BestTracker:
    """Best value of ``metric`` so far (higher is better unless ``mode="min"``) and early stopping.

    `update` returns True when the value is a new best (strictly better: its checkpoint is
    kept). ``bad_evals`` counts evaluations in a row that did not improve on the best by at
    least ``min_delta``; `should_stop` is True once it reaches ``patience``.
    """

    metric: str = "mask_AP"
    mode: str = "max"
    patience: Optional[int] = None
    min_delta: float = 0.0
    best: Optional[float] = None
    best_step: Optional[int] = None
    bad_evals: int = 0

    def __post_init__(self):
        if self.mode not in ("max", "min"):
            raise UserError(f"metric mode {self.mode!r}: expected max or min")
        if self.patience is not None and self.patience < 1:
            raise UserError(f"--patience {self.patience}: expected a positive number of evaluations")
        if self.min_delta < 0:
            raise UserError(f"--min_delta {self.min_delta}: expected >= 0")

    def _gain(self, value: float) -> float:
        return value - self.best if self.mode == "max" else self.best - value

    def update(self, value: float, step: int) -> bool:
        if value is None or not math.isfinite(value):
            self.bad_evals += 1
            return False
        if self.best is None:
            self.best, self.best_step, self.bad_evals = value, step, 0
            return True
        gain = self._gain(value)
        self.bad_evals = 0 if gain >= self.min_delta and gain > 0 else self.bad_evals + 1
        if gain > 0:
            self.best, self.best_step = value, step
            return True
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_evals >= self.patience
