"""Read what TFOD2 prints: training steps and losses, evaluation metrics, the cause of a failure.

`model_lib_v2.train_loop` logs, every `LOG_EVERY` steps (the launcher sets it)::

    INFO:tensorflow:Step 20 per-step time 1.412s
    INFO:tensorflow:{'Loss/BoxClassifierLoss/classification_loss': 0.27780938,
     'Loss/total_loss': 2.2035775,
     'learning_rate': 0.001}

usually twice (TensorFlow's and absl's log handlers both write to stderr, the absl copy
prefixed ``I1121 22:07:46.45 123 model_lib_v2.py:705]``). `TrainLogParser` turns each step
once into a `TrainEvent`. Evaluation prints COCO metrics as ``+ DetectionBoxes_Precision/mAP:
0.123`` lines (`parse_eval_metrics`). `failure_cause` picks the last exception line.
"""

from __future__ import annotations

import ast
import re
import time
from typing import Callable, Dict, Iterable, List, Optional

from tfod_seg.engines.progress import TrainEvent

_STEP_RE = re.compile(r"Step (\d+) per-step time ([0-9.eE+-]+)s")
_ABSL_PREFIX_RE = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] ")
_TF_PREFIX_RE = re.compile(r"^(INFO|WARNING|ERROR):tensorflow:")
_METRIC_RE = re.compile(r"^\s*\+ (\S.*?): (-?[0-9.]+(?:e[-+]?\d+)?|nan|-?inf)\s*$")
_EXC_RE = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt|NotFound)\b(?::|$)"
    r"|^FATAL Flags parsing error"
)


def strip_prefix(line: str) -> str:
    """The message of a log line, without TensorFlow's or absl's prefix."""
    line = line.rstrip("\n")
    line = _ABSL_PREFIX_RE.sub("", line, count=1)
    return _TF_PREFIX_RE.sub("", line, count=1)


class TrainLogParser:
    """Feed it TFOD2 log lines; it calls ``on_event(TrainEvent)`` once per logged step.

    ``total_steps`` is the step training runs to. ``steps_per_sec`` is measured on the wall
    clock between two logged steps (TFOD2's own per-step time covers only the last step); for
    the first logged step, which includes building the graph, TFOD2's figure is used.
    """

    def __init__(self, total_steps: int, on_event: Optional[Callable[[TrainEvent], None]] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total_steps = int(total_steps)
        self.on_event = on_event
        self.clock = clock
        self.events: List[TrainEvent] = []
        self._pending: Optional[tuple] = None  # (step, per_step_time, seen_at)
        self._dict_lines: Optional[List[str]] = None
        self._last_step = -1
        self._last_seen: Optional[tuple] = None  # (step, time)

    def feed(self, line: str) -> None:
        msg = strip_prefix(line)
        m = _STEP_RE.search(msg)
        if m:
            step = int(m.group(1))
            if step <= self._last_step or (self._pending is not None and self._pending[0] == step):
                return  # the second handler's copy of a line already seen
            self._flush(losses={})  # a pending step whose loss dict never came
            self._pending = (step, float(m.group(2)), self.clock())
            return
        if self._pending is None:
            return
        if self._dict_lines is None:
            if msg.lstrip().startswith("{"):
                self._dict_lines = [msg]
            else:
                return
        else:
            self._dict_lines.append(msg)
        if msg.rstrip().endswith("}"):
            self._flush(_parse_loss_dict(" ".join(self._dict_lines)))

    def feed_all(self, lines: Iterable[str]) -> List[TrainEvent]:
        for line in lines:
            self.feed(line)
        self.close()
        return self.events

    def close(self) -> None:
        self._flush(losses={})

    def _flush(self, losses: Dict[str, float]) -> None:
        self._dict_lines = None
        if self._pending is None:
            return
        step, per_step, seen = self._pending
        self._pending = None
        if step <= self._last_step:
            return
        rate = None
        if self._last_seen is not None and seen > self._last_seen[1]:
            rate = (step - self._last_seen[0]) / (seen - self._last_seen[1])
        elif per_step > 0:
            rate = 1.0 / per_step
        self._last_step = step
        self._last_seen = (step, seen)
        loss = losses.pop("Loss/total_loss", None)
        remaining = max(self.total_steps - step, 0)
        eta = remaining / rate if rate else None
        extra = dict(losses)
        extra["per_step_time"] = per_step
        event = TrainEvent(step=step, total_steps=self.total_steps, loss=loss, steps_per_sec=rate,
                           eta_seconds=eta, extra=extra)
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)


def _parse_loss_dict(text: str) -> Dict[str, float]:
    """``{'Loss/total_loss': 2.2, 'learning_rate': 0.001}`` (pprint of numpy scalars) → floats."""
    text = re.sub(r"(?:np\.)?float(?:32|64)\(([^()]*)\)", r"\1", text)  # numpy >= 2 reprs
    text = re.sub(r"\b(nan|inf)\b", r"'\1'", text)
    try:
        raw = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return {}
    out = {}
    for key, value in raw.items() if isinstance(raw, dict) else ():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def parse_eval_metrics(lines: Iterable[str]) -> Dict[str, float]:
    """COCO metrics TFOD2 logs after an evaluation (``+ DetectionMasks_Precision/mAP: 0.1``).

    When several checkpoints were evaluated, the values of the last one win.
    """
    metrics: Dict[str, float] = {}
    for line in lines:
        m = _METRIC_RE.search(strip_prefix(line))
        if m:
            metrics[m.group(1)] = float(m.group(2))
    return metrics


# Known TFOD2 failures: a substring of the cause and what to do about it.
HINTS = (
    ("not bound to checkpointed values",
     "the checkpoint holds no trained model variables: the only checkpoint is probably ckpt-1, "
     "which TFOD2 writes at step 0 before training; train at least --checkpoint_every_n steps"),
    ("Invalid PNG data",
     "the records hold masks in another encoding than the config's mask_type says; "
     "records written by `tfod-seg convert` need mask_type: PNG_MASKS on both input readers"),
    ("Groundtruth instance masks not provided",
     "set load_instance_masks: true and mask_type: PNG_MASKS on the input readers"),
    ("Name: , Feature: image/object/mask",
     "the records' mask feature does not match the config's mask_type (PNG_MASKS vs NUMERICAL_MASKS)"),
)


def failure_cause(lines: List[str], max_chars: int = 400) -> Optional[str]:
    """The last exception line of a log (plus a hint for known TFOD2 failures), or ``None``."""
    cause = None
    for i in range(len(lines) - 1, -1, -1):
        msg = strip_prefix(lines[i]).strip()
        if _EXC_RE.match(msg):
            cause = msg
            # TF errors often carry the useful part on the next line.
            if i + 1 < len(lines) and len(msg) < 60:
                nxt = strip_prefix(lines[i + 1]).strip()
                if nxt and not nxt.startswith(("Traceback", "During handling")):
                    cause = f"{msg} {nxt}"
            break
    if cause is None:
        return None
    if len(cause) > max_chars:
        cause = cause[: max_chars - 3] + "..."
    text = "\n".join(lines[-400:])
    for needle, hint in HINTS:
        if needle in cause or needle in text:
            return f"{cause}\n  hint: {hint}"
    return cause
