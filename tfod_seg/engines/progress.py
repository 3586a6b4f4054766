"""Training progress events, the one thing every engine reports while it trains.

An engine calls ``on_progress(TrainEvent(...))`` after each training loop (Model Garden: every
``trainer.steps_per_loop`` steps; TFOD2: every logged step). The CLI renders the events with
`tfod_seg.cli._train_display`; library users can pass any callable.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional


@dataclasses.dataclass(frozen=True)
class TrainEvent:
    """Where training is.

    ``step`` is the global step reached (counting steps of earlier runs that this one resumed
    from); ``total_steps`` the target total. ``loss`` is the mean total training loss over the
    last loop (``None`` for the event sent before the first step). ``steps_per_sec`` is the rate
    of the last loop, ``eta_seconds`` the time to ``total_steps`` at that rate (``None`` when
    unknown). ``extra`` holds engine-specific values (learning rate, individual losses).
    """

    step: int
    total_steps: int
    loss: Optional[float] = None
    steps_per_sec: Optional[float] = None
    eta_seconds: Optional[float] = None
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def loss_is_finite(self) -> bool:
        return self.loss is None or math.isfinite(self.loss)
