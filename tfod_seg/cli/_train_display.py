"""Render `TrainEvent`s on the console: one tqdm bar with step, loss, steps/s and ETA.

Both engines feed it through `Engine.train(options, on_progress=...)`. CLI only; TensorFlow is
never imported here.
"""

from __future__ import annotations

import math
import sys
from typing import Optional


def format_eta(seconds: Optional[float]) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def describe(event) -> str:
    """One line for an event: ``step 200/400 loss 1.234 2.10 steps/s ETA 1:35``."""
    parts = [f"step {event.step}/{event.total_steps}"]
    if event.loss is not None:
        parts.append(f"loss {event.loss:.4g}")
    if event.steps_per_sec:
        parts.append(f"{event.steps_per_sec:.2f} steps/s")
    parts.append(f"ETA {format_eta(event.eta_seconds)}")
    lr = event.extra.get("learning_rate") if event.extra else None
    if lr is not None:
        parts.append(f"lr {lr:.3g}")
    return " ".join(parts)


class TrainDisplay:
    """Callable ``on_progress`` target drawing a bar; ``close()`` when training returns.

    With ``disable=True`` (or stderr not a terminal and ``log_lines=True``) it prints one
    line per event instead, so logs of batch jobs stay readable.
    """

    def __init__(self, desc: str = "train", disable: bool = False, log_lines: Optional[bool] = None,
                 stream=None):
        self.desc = desc
        self.stream = stream or sys.stderr
        self.log_lines = (not self.stream.isatty()) if log_lines is None else log_lines
        self.disable = disable
        self.bar = None
        self.last = None

    def __call__(self, event) -> None:
        self.last = event
        if self.disable:
            return
        if self.log_lines:
            print(f"{self.desc}: {describe(event)}", file=self.stream, flush=True)
            return
        if self.bar is None:
            from tfod_seg.cli._common import progress_bar  # tqdm: imported when a bar is drawn

            self.bar = progress_bar(total=event.total_steps, desc=self.desc, unit="step")
            self.bar.n = event.step
            self.bar.last_print_n = event.step
        else:
            self.bar.update(max(0, event.step - self.bar.n))
        post = []
        if event.loss is not None:
            post.append(f"loss={event.loss:.4g}")
        if event.steps_per_sec:
            post.append(f"{event.steps_per_sec:.2f} steps/s")
        if event.eta_seconds is not None:
            post.append(f"ETA {format_eta(event.eta_seconds)}")
        self.bar.set_postfix_str(" ".join(post))
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
