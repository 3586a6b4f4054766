"""A learning-rate schedule stretched or shrunk to another total step count.

`ScaledSchedule` wraps the schedule Model Garden built from the config (warm-up, cosine,
stepwise, ...) and feeds it ``step * scale``: with ``scale = base_steps / total_steps`` the
schedule written for ``base_steps`` runs completely over ``total_steps`` (warm-up and decay keep
their share of the run). ``scale`` is a variable, so a time-budget run can refit it after each
loop without retracing the train step. Imports TensorFlow: import this module lazily.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras


class ScaledSchedule(tf_keras.optimizers.schedules.LearningRateSchedule):
    """``base(step * scale)``; ``scale`` a non-trainable float32 variable."""

    def __init__(self, base, scale: float = 1.0):
        super().__init__()
        self.base = base
        self.scale = tf.Variable(float(scale), dtype=tf.float32, trainable=False, name="lr_schedule_scale")

    def set_total(self, base_steps: int, total_steps: int) -> None:
        self.scale.assign(float(base_steps) / float(max(1, total_steps)))

    def __call__(self, step):
        return self.base(tf.cast(step, tf.float32) * self.scale)

    def get_config(self):
        return {"base": tf_keras.optimizers.schedules.serialize(self.base)
                if isinstance(self.base, tf_keras.optimizers.schedules.LearningRateSchedule) else self.base,
                "scale": float(self.scale.numpy())}


def install(optimizer, base_steps: int, total_steps: int) -> ScaledSchedule:
    """Wrap ``optimizer``'s schedule (Model Garden built it from the config) in a `ScaledSchedule`."""
    lrs = tf_keras.optimizers.schedules.LearningRateSchedule
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer wraps the real one
    # New-style Keras optimizers keep the schedule in _learning_rate (learning_rate is its current
    # value); legacy ones (Model Garden's `adam`, `sgd`) return the schedule itself.
    own = getattr(inner, "_learning_rate", None)
    base = own if isinstance(own, lrs) else inner.learning_rate
    if not isinstance(base, lrs):
        base = _Constant(float(tf.convert_to_tensor(base)))
    scaled = ScaledSchedule(base)
    scaled.set_total(base_steps, total_steps)
    inner.learning_rate = scaled
    return scaled


class _Constant(tf_keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def __call__(self, step):
        return tf.constant(self.value, tf.float32)

    def get_config(self):
        return {"value": self.value}
