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

import atexit
import contextlib
import logging
import tempfile
import time
from typing import List, Optional

from tfod_seg import io
from tfod_seg.engines.base import EvalResult
from tfod_seg.engines.garden import runtime
from tfod_seg.errors import EngineError

logger = logging.getLogger(__name__)


class _Evaluator:
    """Model Garden's task and Orbit controller in eval mode for one checkpoint directory."""

    def __init__(self, params, strategy, checkpoint_dir: str, eval_timeout: Optional[float]):
        from official.core import task_factory, train_lib

        self.checkpoint_dir = checkpoint_dir
        self.strategy = strategy
        # Model Garden's COCO evaluator reads logging_dir/annotation.json with pycocotools' open() and
        # copies it locally itself only for gs:// (coco_evaluator.py): other URLs (ram://) get a local folder.
        logging_dir = checkpoint_dir
        if io.is_url(checkpoint_dir) and io.scheme(checkpoint_dir) != "gs":
            logging_dir = tempfile.mkdtemp(prefix="tfod-seg-eval-")
            atexit.register(io.rmtree, logging_dir)
        runtime.prepare_validation(params, logging_dir)
        if eval_timeout is not None:
            params.override({"trainer": {"continuous_eval_timeout": int(eval_timeout)}}, is_strict=True)
        params.lock()
        self.params = params
        self.quiet = runtime.StdoutToLog(logging.getLogger("official.orbit"))  # pycocotools and Orbit print
        with self.strategy.scope(), contextlib.redirect_stdout(self.quiet):
            task = task_factory.get_task(params.task, logging_dir=logging_dir)
            self.runner = train_lib.OrbitExperimentRunner(
                distribution_strategy=self.strategy, task=task, mode="eval", params=params,
                model_dir=checkpoint_dir)
        self.history: List[EvalResult] = []

    def run_one(self, path: str) -> EvalResult:
        t0 = time.perf_counter()
        with self.strategy.scope(), contextlib.redirect_stdout(self.quiet):
            self.runner.controller.restore_checkpoint(path)
            logs = self.runner.controller.evaluate(steps=self.params.trainer.validation_steps)
        result = EvalResult(metrics=runtime.metrics_by_name(logs or {}),
                            step=int(self.runner.trainer.global_step.numpy()), checkpoint=path,
                            eval_seconds=time.perf_counter() - t0)
        self.history.append(result)
        _write_metrics(self.checkpoint_dir, result, self.history)
        logger.info("step %d: box AP %.3f, mask AP %.3f", result.step, result.get("box_AP", float("nan")),
                    result.get("mask_AP", float("nan")))
        return result


def evaluate(config_path, checkpoint_dir, *, once: bool = True, eval_timeout: Optional[float] = None) -> EvalResult:
    """COCO metrics of the checkpoint(s) in ``checkpoint_dir`` on the config's val records.

    Returns an `EvalResult` whose ``metrics`` are ``box_AP``, ``box_AP50``, ``box_AP75``,
    ``box_APs``, ``box_APm``, ``box_APl``, ``box_ARmax1``, ``box_ARmax10``, ``box_ARmax100``,
    ``box_ARs``, ``box_ARm``, ``box_ARl`` and the same with ``mask_`` (floats in [0, 1]; -1 when
    COCO has no object of that size); ``step`` and ``checkpoint`` say what was evaluated and,
    with ``once=False``, ``history`` holds one result per evaluated checkpoint, oldest first.
    """
    config_path = io.check_path(config_path, "config")
    checkpoint_dir = io.check_path(checkpoint_dir, "--checkpoint_dir")
    _, params = runtime.load_params(config_path)
    strategy, _ = runtime.make_strategy(params, "auto")  # before any other TensorFlow work
    latest, _ = runtime.latest_checkpoint(checkpoint_dir)
    if once and not latest:
        raise EngineError(f"--checkpoint_dir {checkpoint_dir}: no checkpoint to evaluate "
                          f"(train first, or leave out --once to wait for one)")
    if not once:
        io.makedirs(checkpoint_dir, "--checkpoint_dir")
    evaluator = _Evaluator(params, strategy, checkpoint_dir, eval_timeout)
    if once:
        return evaluator.run_one(latest)
    import tensorflow as tf

    total = evaluator.params.trainer.train_steps
    timeout = evaluator.params.trainer.continuous_eval_timeout
    for path in tf.train.checkpoints_iterator(checkpoint_dir, timeout=timeout):
        result = evaluator.run_one(path)
        if total and result.step >= total:
            logger.info("checkpoint at step %d reached trainer.train_steps=%d: done", result.step, total)
            break
    if not evaluator.history:
        raise EngineError(f"--checkpoint_dir {checkpoint_dir}: no checkpoint appeared within --eval_timeout {timeout} s")
    last = evaluator.history[-1]
    return EvalResult(metrics=last.metrics, step=last.step, checkpoint=last.checkpoint,
                      eval_seconds=last.eval_seconds, history=list(evaluator.history))


def _write_metrics(checkpoint_dir: str, latest: EvalResult, history) -> None:
    try:
        io.atomic_write_json(io.join(checkpoint_dir, "eval_metrics.json"),
                             {"latest": latest.to_json(), "history": [h.to_json() for h in history]})
    except (OSError, io.PathError) as e:  # a read-only checkpoint directory must not lose the metrics
        logger.warning("could not write eval_metrics.json in %s: %s", checkpoint_dir, e)
