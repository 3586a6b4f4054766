"""Mask R-CNN config generation: template → generated file → ``--set`` overrides.

The template's kind picks the target: a TFOD2 ``.config`` (protobuf text, edited with
`tfod_seg.pbtxt` so the template's comments and order survive) or a Model Garden
experiment ``.yaml`` (built with `tfod_seg.config.garden`, Model Garden's strict override).

Every coupled field is set from the same few inputs, so the result is correct by construction:

TFOD2 (``model.faster_rcnn``, `tfod_seg.config.tfod_pipeline`): ``num_classes`` = label-map
size; a Faster R-CNN template becomes a complete Mask R-CNN with the values TFOD2's own Mask
R-CNN configs use for its feature-extractor family (`tfod_seg.config.families`: ``number_of_stages:
3``, ``predict_instance_masks``, mask size, mask convolutions and their ``conv_hyperparams``, mask
loss weight; the header lists what was added); the TPU-only fields set or cleared for ``--target``
(`tfod_seg.config.targets`); on BOTH input readers ``load_instance_masks: true``, a
``mask_type`` matching the records (``PNG_MASKS``/``NUMERICAL_MASKS``), ``label_map_path`` and the
record globs; ``eval_config`` ``metrics_set`` = coco_detection_metrics + coco_mask_metrics and
``eval_instance_masks: true``; ``fine_tune_checkpoint`` + ``fine_tune_checkpoint_type`` (removed
when there is no checkpoint: the template's ``PATH_TO_BE_CONFIGURED`` would fail); batch size;
``num_steps`` with the schedule scaled to it (cosine ``total_steps``; warm-up scaled
proportionally and always shorter than training).

Model Garden (``maskrcnn_*`` experiments, `tfod_seg.config.garden_generate`): ``task.model.num_classes`` = label-map size + 1 (Model
Garden counts the background); ``include_mask``; ``input_size``; train/validation
``input_path``; ``global_batch_size``; ``trainer.train_steps`` with the schedule and the loop /
summary / checkpoint / validation intervals scaled or clamped to it; ``init_checkpoint`` and
``init_checkpoint_modules`` (see `GARDEN_CHECKPOINT_MODULES`); ``runtime`` (strategy, mixed
precision, with the data ``dtype`` to match) and loop intervals from ``--target`` when it (or
``--strategy``) is given, else the template's; validation with COCO metrics computed from the
validation records themselves (``annotation_file: ''``: Model Garden's Mask R-CNN task then
writes ``MODEL_DIR/annotation.json`` from ``validation_data``; ``num_examples`` from the
records' ``report.json`` when found, else -1 = all).

Learning rate: when ``batch_size`` differs from the template's and ``lr`` is not given, every
learning-rate value (base, warm-up, step values) scales linearly with the batch size
(Goyal et al., 2017); the generated file's header says so and gives both values.

Augmentation (``augment="flip,scale"``) replaces the template's set: ``flip`` (horizontal),
``vflip``, ``scale`` or ``scale=MIN:MAX`` (random scale jitter then crop/pad to the input size;
default 0.8:1.25), ``none``. TFOD2: ``data_augmentation_options`` (``random_horizontal_flip``,
``random_vertical_flip``, ``random_scale_crop_and_pad_to_square``); Model Garden: the parser's
``aug_rand_hflip``, ``aug_rand_vflip``, ``aug_scale_min/max``.

``overrides`` are ``key=value`` strings applied last. Model Garden: any config key (dotted),
value parsed as YAML, unknown keys are errors listing the nearest valid keys. TFOD2: a dotted
protobuf-text path (``eval_config.metrics_set[1]=...``); a path that is not in the template is
an error listing the nearest existing paths unless written ``+path=value`` (which creates it;
checked against the real schema only when TFOD2 is importable).
"""

from __future__ import annotations

import logging
import os
from typing import Optional, Sequence

from tfod_seg.config.garden_generate import GARDEN_CHECKPOINT_MODULES, generate_garden
from tfod_seg.config.inputs import (GenerateInputs, abs_path, command_line, load_label_map, parse_augment,
                                    parse_override)
from tfod_seg.config.schedule import Plan
from tfod_seg.config.semantic import generate_semantic, is_semantic_template
from tfod_seg.config.targets import TARGETS, resolve_target
from tfod_seg.config.templates import (GARDEN_EXTENSIONS, TEMPLATE_DIR, TFOD_EXTENSIONS, check_output_kind,
                                       find_template, template_kind, template_paths)
from tfod_seg.config.tfod_pipeline import (TFOD_CHECKPOINT_TYPES, TFOD_MASK_TYPES, generate_tfod,
                                           input_reader_paths, tfod_image_size)
from tfod_seg.errors import ConfigError
from tfod_seg.records.metadata import find_report, read_report, split_patterns

log = logging.getLogger(__name__)

CHECKPOINT_TYPES = ("detection", "classification", "backbone", "full")
MIXED_PRECISION = ("float32", "float16", "bfloat16")
STRATEGIES = ("mirrored", "one_device", "multi_worker_mirrored", "tpu")  # Model Garden runtime.distribution_strategy
TRAIN_STRATEGIES = ("auto", "cpu", "gpu", "multi_worker", "tpu")  # `tfod-seg train --strategy` (TFOD2: target only)
PLACEHOLDER = "PATH_TO_BE_CONFIGURED"


def _check_choices(kind, steps, batch_size, image_size, checkpoint_type, mask_type, mixed_precision,
                   strategy) -> None:
    for flag, value in (("--steps", steps), ("--batch-size", batch_size), ("--image-size", image_size)):
        if value is not None and value <= 0:
            raise ConfigError(f"{flag} must be > 0, got {value}")
    for flag, value, allowed in (("--checkpoint-type", checkpoint_type, CHECKPOINT_TYPES),
                                 ("--mask-type", mask_type, tuple(TFOD_MASK_TYPES)),
                                 ("--mixed-precision", mixed_precision, MIXED_PRECISION),
                                 ("--strategy", strategy, STRATEGIES if kind == "garden"
                                  else tuple(dict.fromkeys(STRATEGIES + TRAIN_STRATEGIES)))):
        if value is not None and value not in allowed:
            raise ConfigError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")


def _inputs(tpath, label_map, train, val, model_dir, out, checkpoint, checkpoint_type, augment, mask_type,
            image_size, overrides, strategy, mixed_precision, target) -> GenerateInputs:
    lm, lm_path = load_label_map(label_map)
    target_name, how = resolve_target(target, strategy)
    inputs = GenerateInputs(
        template=tpath, label_map=lm, label_map_path=abs_path(lm_path), train=split_patterns(train),
        val=split_patterns(val), model_dir=model_dir, out=os.fspath(out), checkpoint=abs_path(checkpoint),
        checkpoint_type=checkpoint_type, augment=parse_augment(augment), mask_type=mask_type, image_size=image_size,
        overrides=[parse_override(o) for o in overrides], strategy=strategy, mixed_precision=mixed_precision,
        target=target_name, target_how=how)
    if not inputs.train:
        raise ConfigError("--train: give the training record glob(s), e.g. 'out/train-*.tfrecord'")
    if not inputs.label_map_path:
        raise ConfigError("--label-map: the label map must be a file (its path goes into the config)")
    inputs.report = read_report(find_report(inputs.train))
    return inputs


def generate_config(template, *, label_map, train, val, model_dir, out, batch_size=None, steps=None, lr=None,
                    warmup_steps=None, image_size=None, checkpoint=None, checkpoint_type=None, augment=None,
                    mask_type="png", overrides: Sequence[str] = (), strategy=None, mixed_precision=None,
                    target: Optional[str] = None) -> str:
    """Write a Mask R-CNN config for ``template`` (path or name in ``pipelines/``) to ``out``.

    ``train``/``val`` are record globs (a string, comma-separated, or a list; local or URLs);
    ``label_map`` a ``label_map.pbtxt`` path or `LabelMap`; ``model_dir`` is only recorded in
    the header (the training command); ``target`` is ``cpu``, ``gpu`` or ``tpu`` (default: from
    ``strategy``, else gpu). Returns the path written. See the module docstring for what is set.
    """
    tpath = find_template(template)
    kind = template_kind(tpath)
    check_output_kind(out, kind)
    _check_choices(kind, steps, batch_size, image_size, checkpoint_type, mask_type, mixed_precision, strategy)
    inputs = _inputs(tpath, label_map, train, val, model_dir, out, checkpoint, checkpoint_type, augment, mask_type,
                     image_size, overrides, strategy, mixed_precision, target)
    plan = Plan(batch_size, steps, lr, warmup_steps)
    command = command_line(template, label_map=inputs.label_map_path, train=train, val=val, model_dir=model_dir,
                           out=out, batch_size=batch_size, steps=steps, lr=lr, warmup_steps=warmup_steps,
                           image_size=image_size, checkpoint=checkpoint, checkpoint_type=checkpoint_type,
                           augment=augment, mask_type=mask_type, overrides=overrides, strategy=strategy,
                           target=target, mixed_precision=mixed_precision)
    if kind == "tfod":
        return generate_tfod(inputs, plan, command)
    if is_semantic_template(tpath):  # a scene model (garden_deeplab*): its own coupled fields
        return generate_semantic(inputs, plan, command)
    return generate_garden(inputs, plan, command)


__all__ = [
    "generate_config",
    "find_template",
    "template_paths",
    "template_kind",
    "parse_augment",
    "parse_override",
    "input_reader_paths",
    "tfod_image_size",
    "GARDEN_CHECKPOINT_MODULES",
    "TFOD_CHECKPOINT_TYPES",
    "TFOD_MASK_TYPES",
    "TEMPLATE_DIR",
    "TARGETS",
    "TFOD_EXTENSIONS",
    "GARDEN_EXTENSIONS",
]
