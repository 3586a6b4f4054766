"""`GardenEngine`: the `Engine` protocol over `train.train`, `evaluate.evaluate`, `export.export`."""

from __future__ import annotations

from tfod_seg.engines.base import (EvalResult, EvaluateOptions, ExportOptions, ExportResult, ProgressCallback,
                                   TrainOptions, TrainSummary, check_supported)
from tfod_seg.engines.garden import edge as edge_mod
from tfod_seg.engines.garden import evaluate as evaluate_mod
from tfod_seg.engines.garden import export as export_mod
from tfod_seg.engines.garden import semantic as semantic_mod
from tfod_seg.engines.garden import train as train_mod


class GardenEngine:
    """TF Model Garden (`official.vision`) Mask R-CNN, in this process."""

    name = "garden"
    label = "a Model Garden .yaml"
    hint = ("use --strategy tpu --tpu_name for TPUs and `tfod-seg config --set key=value` to change "
            "a Model Garden config")

    def train(self, options: TrainOptions, on_progress: ProgressCallback = None) -> TrainSummary:
        check_supported(self, options)
        return train_mod.train(
            options.config_path, options.model_dir, num_train_steps=options.num_train_steps,
            checkpoint_every_n=options.checkpoint_every_n, strategy=options.strategy, tpu_name=options.tpu_name,
            num_workers=options.num_workers, mixed_precision=options.mixed_precision,
            init_checkpoint=options.init_checkpoint, time_budget=options.time_budget, eval_every=options.eval_every,
            patience=options.patience, min_delta=options.min_delta, eval_metric=options.eval_metric,
            on_progress=on_progress)

    def evaluate(self, options: EvaluateOptions, on_progress: ProgressCallback = None) -> EvalResult:
        check_supported(self, options)
        return evaluate_mod.evaluate(options.config_path, options.checkpoint_dir, once=options.once,
                                     eval_timeout=None if options.once else options.eval_timeout)

    def export(self, options: ExportOptions) -> ExportResult:
        check_supported(self, options)
        if semantic_mod.is_semantic_config(options.config_path):  # a scene model: Model Garden's segmentation export
            return semantic_mod.export(options)
        if options.format != "saved_model" or options.batch_size != 1:
            return edge_mod.export_result(options)
        return export_mod.export(options.config_path, options.trained_checkpoint_dir, options.output_directory,
                                 input_type=options.input_type, checkpoint=options.checkpoint)
