"""Schedule arithmetic shared by both engines' generators: steps scaled to a new training length,
warm-up kept shorter than training, learning rate scaled linearly with the batch size."""

from __future__ import annotations

from typing import List, Optional

from tfod_seg.errors import ConfigError


def scaled_steps(value: float, template_steps: int, steps: Optional[int]) -> int:
    """A step count of the template (a boundary, a decay length) scaled to ``steps`` of training."""
    if steps is None or not template_steps:
        return int(value)
    return max(1, int(round(value * steps / template_steps)))


def warmup(template_warmup: int, template_steps: int, steps: Optional[int], warmup_steps: Optional[int]) -> int:
    """Warm-up steps: ``--warmup-steps`` (checked), else the template's scaled; always < training."""
    total = steps if steps is not None else template_steps
    if warmup_steps is not None:
        if warmup_steps < 0:
            raise ConfigError(f"--warmup-steps must be >= 0, got {warmup_steps}")
        if total and warmup_steps >= total:
            raise ConfigError(f"--warmup-steps {warmup_steps} must be smaller than the number of training steps ({total})")
        return int(warmup_steps)
    if not template_warmup:
        return 0
    w = scaled_steps(template_warmup, template_steps, steps) if steps is not None else int(template_warmup)
    if total and w >= total:
        w = max(0, total // 10)
    return w


def fmt(x: float) -> str:
    return f"{x:.6g}"


class Plan:
    """The decisions shared by both engines, and the notes that go into the header."""

    def __init__(self, batch_size, steps, lr, warmup_steps):
        self.batch_size, self.steps, self.lr, self.warmup_steps = batch_size, steps, lr, warmup_steps
        self.notes: List[str] = []

    def lr_factor(self, template_batch: int, template_lr: float) -> float:
        """Multiplier for every learning-rate value of the template."""
        if self.lr is not None:
            if self.lr <= 0:
                raise ConfigError(f"--lr must be > 0, got {self.lr}")
            f = self.lr / template_lr if template_lr else 1.0
            self.notes.append(f"learning rate: {fmt(self.lr)} (--lr; template's {fmt(template_lr)})")
            return f
        if self.batch_size is not None and template_batch and self.batch_size != template_batch:
            f = self.batch_size / template_batch
            self.notes.append(
                f"learning rate: {fmt(template_lr * f)} = template's {fmt(template_lr)} x {self.batch_size}/{template_batch} "
                f"(scaled linearly with the batch size because --lr was not given)")
            return f
        self.notes.append(f"learning rate: {fmt(template_lr)} (template's)")
        return 1.0


__all__ = ["Plan", "scaled_steps", "warmup", "fmt"]
