"""The Orbit runner `tfod-seg train` builds is Model Garden's, configured as `python -m
official.vision.train` configures it (asynchronous checkpoints, no thread or determinism setting
of its own). The runner class is replaced by a recorder: no model is built or trained."""

import types

from tests.garden_fixtures import write_tiny_config
from tfod_seg.engines.garden import runtime, train


class RecordingRunner:
    calls = []

    def __init__(self, **kwargs):
        import tensorflow as tf

        RecordingRunner.calls.append(kwargs)
        self.trainer = types.SimpleNamespace(global_step=tf.Variable(0, dtype=tf.int64))


def test_runner_gets_model_gardens_async_checkpoints_and_the_config_as_is(tmp_path, monkeypatch):
    import tensorflow as tf
    from official.core import train_lib

    monkeypatch.setattr(train_lib, "OrbitExperimentRunner", RecordingRunner)
    RecordingRunner.calls.clear()
    from tensorflow.python.framework import config as tf_config

    threads = (tf.config.threading.get_intra_op_parallelism_threads(),
               tf.config.threading.get_inter_op_parallelism_threads())
    determinism = tf_config.is_op_determinism_enabled()
    cfg = write_tiny_config(str(tmp_path / "t.yaml"), str(tmp_path / "train-*.tfrecord"),
                            str(tmp_path / "val-*.tfrecord"), 3)
    plan = train._plan(cfg, str(tmp_path / "m"), num_train_steps=None, checkpoint_every_n=None, strategy="cpu",
                       tpu_name=None, num_workers=1, mixed_precision=False)
    runner, progress = train._build(plan, None)
    (kwargs,) = RecordingRunner.calls
    assert kwargs["enable_async_checkpointing"] is True and runtime.ASYNC_CHECKPOINTS is True
    assert kwargs["mode"] == "train" and kwargs["params"] is plan.params
    # tfod-seg's own train actions only: Model Garden appends its own to the same list
    assert [type(a).__name__ for a in kwargs["train_actions"]] == ["_ProgressAction", "_StopOnNonFiniteLoss"]
    # the user's run keeps TensorFlow's thread settings (the tests' pinning is not the product's)
    assert (tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads()) == threads
    assert tf_config.is_op_determinism_enabled() == determinism
    assert progress.last_step == 0
