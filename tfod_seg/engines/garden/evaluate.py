"""Evaluate Model Garden checkpoints with COCO box and mask metrics (`official.core.train_lib`).

Like TFOD2's ``model_main_tf2 --checkpoint_dir``: ``once=True`` evaluates the latest checkpoint
in ``checkpoint_dir`` and returns; ``once=False`` evaluates every new checkpoint as it appears
and stops when one reaches ``trainer.train_steps`` (training is over) or when no new
checkpoint arrives within ``eval_timeout`` seconds.

The metrics come from Model Garden's own COCO evaluator over ``task.validation_data``. No
annotation file is needed: Model Garden writes ``checkpoint_dir/annotation.json`` from the val
records (see `runtime.prepare_validation`). Eval summaries go to ``checkpoint_dir/validation``
(TensorBoard) and the metrics of each evaluated checkpoint to
``checkpoint_dir/eval_metrics.json``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Dict, Optional

from tfod_seg.errors import EngineError

logger = logging.getLogger(__name__)


def evaluate(config_path, checkpoint_dir, *, once: bool = True, eval_timeout: Optional[float] = None) -> Dict:
    """COCO metrics of the checkpoint(s) in ``checkpoint_dir`` on the config's val records.

    Returns a flat dict: ``box_AP``, ``box_AP50``, ``box_AP75``, ``box_APs``, ``box_APm``,
    ``box_APl``, ``box_ARmax1``, ``box_ARmax10``, ``box_ARmax100``, ``box_ARs``, ``box_ARm``,
    ``box_ARl`` and the same with ``mask_`` (floats in [0, 1]; -1 when COCO has no object of that
    size), plus ``step`` and ``checkpoint`` (what was evaluated), ``eval_seconds``, and with
    ``once=False`` ``history`` (one entry per evaluated checkpoint, oldest first).
    """
    from tfod_seg.engines.garden import runtime

    config_path = os.fspath(config_path)
    checkpoint_dir = os.fspath(checkpoint_dir)
    experiment, params = runtime.load_params(config_path)
    strategy_obj, _ = runtime.make_strategy(params, "auto")

    import tensorflow as tf
    from official.core import task_factory, train_lib

    latest, _ = runtime.latest_checkpoint(checkpoint_dir)
    if once and not latest:
        raise EngineError(f"--checkpoint_dir {checkpoint_dir}: no checkpoint to evaluate "
                          f"(train first, or leave out --once to wait for one)")
    if not once and not tf.io.gfile.isdir(checkpoint_dir):
        tf.io.gfile.makedirs(checkpoint_dir)
    runtime.prepare_validation(params, checkpoint_dir)
    if eval_timeout is not None:
        params.override({"trainer": {"continuous_eval_timeout": int(eval_timeout)}}, is_strict=True)
    params.lock()
    quiet = runtime.StdoutToLog(logging.getLogger("official.orbit"))  # pycocotools and Orbit print
    with strategy_obj.scope(), contextlib.redirect_stdout(quiet):
        task = task_factory.get_task(params.task, logging_dir=checkpoint_dir)
        runner = train_lib.OrbitExperimentRunner(
            distribution_strategy=strategy_obj, task=task, mode="eval", params=params, model_dir=checkpoint_dir)
    controller = runner.controller
    steps = params.trainer.validation_steps
    total = params.trainer.train_steps

    history = []

    def run_one(path):
        t0 = time.perf_counter()
        with strategy_obj.scope(), contextlib.redirect_stdout(quiet):
            controller.restore_checkpoint(path)
            logs = controller.evaluate(steps=steps)
        metrics = runtime.metrics_by_name(logs or {})
        metrics.update(step=int(runner.trainer.global_step.numpy()), checkpoint=path,
                       eval_seconds=time.perf_counter() - t0)
        history.append(metrics)
        _write_metrics(checkpoint_dir, metrics, history)
        logger.info("step %d: box AP %.3f, mask AP %.3f", metrics["step"], metrics.get("box_AP", float("nan")),
                    metrics.get("mask_AP", float("nan")))
        return metrics

    if once:
        return run_one(latest)
    timeout = params.trainer.continuous_eval_timeout
    for path in tf.train.checkpoints_iterator(checkpoint_dir, timeout=timeout):
        metrics = run_one(path)
        if total and metrics["step"] >= total:
            logger.info("checkpoint at step %d reached trainer.train_steps=%d: done", metrics["step"], total)
            break
    if not history:
        raise EngineError(f"--checkpoint_dir {checkpoint_dir}: no checkpoint appeared within --eval_timeout {timeout} s")
    return {**history[-1], "history": history}


def _write_metrics(checkpoint_dir: str, metrics: Dict, history) -> None:
    from tfod_seg.io import atomic_write_json

    try:
        atomic_write_json(os.path.join(checkpoint_dir, "eval_metrics.json"),
                          {"latest": metrics, "history": list(history)})
    except OSError as e:  # a read-only checkpoint directory must not lose the metrics
        logger.warning("could not write eval_metrics.json in %s: %s", checkpoint_dir, e)
