"""`TfodEngine`: the `Engine` protocol over `runner.run_job` (TFOD2 in its own interpreter).

The options become TFOD2's own flag names (`model_main_tf2`, `exporter_main_v2`); the results
are built from what the runner parsed out of TFOD2's log.
"""

from __future__ import annotations

from typing import Dict, Optional

from tfod_seg import io
from tfod_seg.engines.base import (EvalResult, EvaluateOptions, ExportOptions, ExportResult, ProgressCallback,
                                   TrainOptions, TrainSummary, check_supported)
from tfod_seg.engines.tfod import runner, traps


def _latest(directory: Optional[str]) -> Optional[str]:
    return traps.latest_checkpoint(directory) if directory and io.isdir(directory) else None


class TfodEngine:
    """The real TFOD2 (`model_main_tf2`, `exporter_main_v2`) in the TFOD2 environment (`make tfod-env`)."""

    name = "tfod"
    label = "a TFOD2 pipeline.config"
    hint = ("set fine_tune_checkpoint in the pipeline.config (`tfod-seg config --checkpoint`) instead of "
            "--checkpoint; the strategy follows --use_tpu / --num_workers")

    def train(self, options: TrainOptions, on_progress: ProgressCallback = None) -> TrainSummary:
        check_supported(self, options)
        flags: Dict[str, object] = {
            "pipeline_config_path": options.config_path, "model_dir": options.model_dir,
            "num_train_steps": options.num_train_steps, "checkpoint_every_n": options.checkpoint_every_n,
            "sample_1_of_n_eval_examples": options.sample_1_of_n_eval_examples,
            "use_tpu": True if (options.use_tpu or options.strategy == "tpu") else None,
            "tpu_name": options.tpu_name, "num_workers": options.num_workers if options.num_workers != 1 else None,
            "config_override": options.config_override,
        }
        log_path = options.log_file or io.join(options.model_dir, "train.log")
        out = runner.run_job("train", flags, tfod_python=options.tfod_python, on_progress=on_progress,
                             log_path=log_path)
        first, last = (out.events[0], out.events[-1]) if out.events else (None, None)
        return TrainSummary(
            engine=self.name, model_dir=options.model_dir,
            total_steps=last.total_steps if last else options.num_train_steps,
            start_step=None, final_step=last.step if last else None,
            trained_steps=(last.step - first.step) if last else 0, final_loss=last.loss if last else None,
            steps_per_sec=last.steps_per_sec if last else None, train_seconds=out.seconds,
            checkpoint=_latest(options.model_dir), log_path=out.log_path)

    def evaluate(self, options: EvaluateOptions, on_progress: ProgressCallback = None) -> EvalResult:
        check_supported(self, options)
        model_dir = options.model_dir or options.checkpoint_dir
        flags: Dict[str, object] = {
            "pipeline_config_path": options.config_path, "checkpoint_dir": options.checkpoint_dir,
            "model_dir": model_dir, "eval_timeout": options.eval_timeout, "once": True if options.once else None,
            "sample_1_of_n_eval_examples": options.sample_1_of_n_eval_examples,
            "use_tpu": options.use_tpu, "config_override": options.config_override,
        }
        log_path = options.log_file or io.join(model_dir, "evaluate.log")
        out = runner.run_job("evaluate", flags, tfod_python=options.tfod_python, on_progress=on_progress,
                             log_path=log_path)
        return EvalResult(metrics=out.metrics, checkpoint=_latest(options.checkpoint_dir), eval_seconds=out.seconds,
                          log_path=out.log_path)

    def export(self, options: ExportOptions) -> ExportResult:
        check_supported(self, options)
        flags: Dict[str, object] = {
            "pipeline_config_path": options.config_path, "trained_checkpoint_dir": options.trained_checkpoint_dir,
            "output_directory": options.output_directory, "input_type": options.input_type,
        }
        if options.config_override:
            flags["config_override"] = options.config_override
        out = runner.run_job("export", flags, tfod_python=options.tfod_python)
        return ExportResult(engine=self.name, output_directory=options.output_directory,
                            saved_model=io.join(options.output_directory, "saved_model"),
                            input_type=options.input_type, checkpoint=_latest(options.trained_checkpoint_dir),
                            log_path=out.log_path)
