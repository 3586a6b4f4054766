"""Model Garden scene-model (semantic segmentation) experiment generation: a
``pipelines/garden_deeplab*.yaml`` template in, the experiment for the user's records out.

Set: ``num_classes`` (label-map size + 1: id 0 is the background pixels no shape covers, see
`tfod_seg.records.semantic`), input paths, input/output size (``--image-size``), flip/scale
augmentation, the learning-rate schedule scaled to ``--steps``/``--batch-size`` (as for Mask
R-CNN: `tfod_seg.config.garden_generate.garden_schedule`), loop intervals clamped to the
training length, checkpoint (``--checkpoint``: backbone only unless ``--checkpoint-type full``),
strategy and precision; then ``--set`` overrides, Model Garden's validation, the header and a
load-back of the written file.
"""

from __future__ import annotations

from typing import Any, Dict

from tfod_seg.config import garden
from tfod_seg.config.garden_generate import (INTERVALS, garden_intervals, input_path, schedule_updates,
                                             write_experiment)
from tfod_seg.config.inputs import GenerateInputs
from tfod_seg.config.schedule import Plan
from tfod_seg.errors import ConfigError

CHECKPOINT_MODULES = {"classification": "backbone", "backbone": "backbone", "detection": "backbone", "full": "all"}


def is_semantic_template(path: str) -> bool:
    """True when the Model Garden template ``path`` is a semantic-segmentation experiment."""
    return type(garden.load_experiment(path)[1].task).__name__ == "SemanticSegmentationTask"


def _data_updates(inputs: GenerateInputs) -> Dict[str, Any]:
    upd: Dict[str, Any] = {"task.model.num_classes": inputs.label_map.max_id + 1,
                           "task.train_data.input_path": input_path(inputs.train), "task.train_data.is_training": True,
                           "task.validation_data.is_training": False, "trainer.validation_steps": -1,
                           "task.export_config.rescale_output": True, "task.allow_image_summary": False}
    if inputs.val:
        upd["task.validation_data.input_path"] = input_path(inputs.val)
    if inputs.image_size:
        size = int(inputs.image_size)
        upd.update({"task.model.input_size": [size, size, 3], "task.train_data.output_size": [size, size],
                    "task.validation_data.output_size": [size, size]})
    aug = inputs.augment
    if aug is not None:
        if aug["vflip"]:
            raise ConfigError("--augment vflip: Model Garden's segmentation parser has horizontal flips only")
        lo, hi = aug["scale"] or (1.0, 1.0)
        upd.update({"task.train_data.aug_rand_hflip": aug["flip"], "task.train_data.aug_scale_min": lo,
                    "task.train_data.aug_scale_max": hi})
    return upd


def _run_updates(cfg, inputs: GenerateInputs, plan: Plan, upd: Dict[str, Any]) -> str:
    schedule_updates(cfg, plan, upd)
    for k, v in garden_intervals({k: getattr(cfg.trainer, k) for k in INTERVALS},
                                 plan.steps or cfg.trainer.train_steps).items():
        upd[f"trainer.{k}"] = v
    if inputs.strategy:
        upd["runtime.distribution_strategy"] = inputs.strategy
    if inputs.mixed_precision:
        upd.update({"runtime.mixed_precision_dtype": inputs.mixed_precision,
                    "task.train_data.dtype": inputs.mixed_precision,
                    "task.validation_data.dtype": inputs.mixed_precision})
    if not inputs.checkpoint:
        upd["task.init_checkpoint"] = ""
        return "checkpoint: none, training from scratch (give --checkpoint to fine-tune)"
    modules = CHECKPOINT_MODULES[inputs.checkpoint_type or "backbone"]
    upd.update({"task.init_checkpoint": inputs.checkpoint, "task.init_checkpoint_modules": modules})
    return f"checkpoint: {inputs.checkpoint} (restores {modules})"


def generate_semantic(inputs: GenerateInputs, plan: Plan, command: str) -> str:
    """Write the scene-model experiment YAML for ``inputs``; return its path."""
    name, cfg = garden.load_experiment(inputs.template)
    upd = _data_updates(inputs)
    note = _run_updates(cfg, inputs, plan, upd)
    extra = [note, "validation: mean IoU and per-class IoU (iou/<class id>, 0 = background) on the val records"]
    return write_experiment(cfg, name, upd, inputs, plan, command, f"Model Garden {name} (semantic segmentation)",
                            extra)


__all__ = ["generate_semantic", "is_semantic_template"]
