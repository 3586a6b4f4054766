"""TFOD2 ``pipeline.config`` generation: a Faster R-CNN or Mask R-CNN template in, a complete
Mask R-CNN for the target hardware out (see `tfod_seg.config.generate` for the coupled fields).

The template is edited as protobuf text (`tfod_seg.pbtxt`), so its comments, order and text
details (``batch_size: 1;``, ``.04``, trailing comments) survive; only edited values change.
The steps, in order: model (classes, stages, the family's mask head: `complete_mask_rcnn`),
image size, input readers, eval metrics, schedule and batch size, checkpoint, target hardware
(`tfod_seg.config.targets`), augmentation, ``--set`` overrides, header; then the real schema
check when TFOD2 is importable and an atomic write.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional, Sequence

from tfod_seg import io
from tfod_seg.config.families import MASK_ENUMS, Family, family_of, missing_mask_fields
from tfod_seg.config.inputs import GenerateInputs, header
from tfod_seg.config.schedule import Plan, scaled_steps, warmup
from tfod_seg.config.targets import apply_tfod_target, tfod_precision
from tfod_seg.config.templates import display_template
from tfod_seg.errors import ConfigError
from tfod_seg.pbtxt import Ident, Message, PbtxtDocument, schema_available, validate_with_schema

log = logging.getLogger(__name__)

FR = "model.faster_rcnn"
MASK_PREDICTOR = f"{FR}.second_stage_box_predictor.mask_rcnn_box_predictor"
RESIZER = f"{FR}.image_resizer"
DEFAULT_CHECKPOINT_TYPE = "detection"
TFOD_CHECKPOINT_TYPES = {"detection": "detection", "classification": "classification",
                         "backbone": "classification", "full": "full"}
TFOD_MASK_TYPES = {"png": "PNG_MASKS", "numerical": "NUMERICAL_MASKS"}
METRICS_SETS = ("coco_detection_metrics", "coco_mask_metrics")
SCHEDULES = ("cosine_decay_learning_rate", "constant_learning_rate", "exponential_decay_learning_rate",
             "manual_step_learning_rate")


def input_reader_paths(doc) -> List[str]:
    """Dotted paths of a TFOD2 pipeline.config's input readers: the train reader, then each
    eval reader (indexed when there are several)."""
    out = []
    if doc.has("train_input_reader"):
        out.append("train_input_reader")
    n = len(doc.get_all("eval_input_reader"))
    out += ["eval_input_reader" if n == 1 else f"eval_input_reader[{k}]" for k in range(n)]
    return out


def tfod_image_size(doc) -> Optional[int]:
    """The square input size a pipeline.config resizes to (None for other resizers)."""
    if doc.has(f"{RESIZER}.fixed_shape_resizer"):
        return doc.get(f"{RESIZER}.fixed_shape_resizer.height", None)
    if doc.has(f"{RESIZER}.keep_aspect_ratio_resizer"):
        return doc.get(f"{RESIZER}.keep_aspect_ratio_resizer.max_dimension", None)
    return None


def extractor_family(doc) -> Family:
    """The feature-extractor `Family` of a pipeline.config (ConfigError for others)."""
    return family_of(doc.get(f"{FR}.feature_extractor.type", ""), doc.source)


# -- model ------------------------------------------------------------------------------------
def complete_mask_rcnn(doc) -> List[str]:
    """Make the ``faster_rcnn`` block a complete Mask R-CNN with the family's TFOD2 values:
    ``number_of_stages: 3``, ``predict_instance_masks``, the mask head and its loss weight.
    Fields the template has are kept. Returns header lines naming what was added."""
    fam = extractor_family(doc)
    if not isinstance(doc.get(MASK_PREDICTOR, None), Message):
        raise ConfigError(f"{doc.source}: {MASK_PREDICTOR} is missing; Mask R-CNN needs the mask_rcnn_box_predictor "
                          "second stage (every TF2 zoo Faster R-CNN config has it)")
    added = []
    if doc.get(f"{FR}.number_of_stages", 2) != 3:
        added.append("number_of_stages: 3")
    doc.set(f"{FR}.number_of_stages", 3)
    if doc.get(f"{MASK_PREDICTOR}.predict_instance_masks", False) is not True:
        added.append("predict_instance_masks: true")
    doc.set(f"{MASK_PREDICTOR}.predict_instance_masks", True)
    present = {f"head.{k}": doc.has(f"{MASK_PREDICTOR}.{k}") for k in fam.mask_head}
    present.update({f"model.{k}": doc.has(f"{FR}.{k}") for k in fam.model})
    head, model = missing_mask_fields(present, fam)
    for key, value in head:
        doc.set(f"{MASK_PREDICTOR}.{key}", _pbtxt_enums(value))
    for key, value in model:
        doc.set(f"{FR}.{key}", value)
    added += [f"{k}: {_describe(v)}" for k, v in head + model]
    if not added:
        return [f"Mask R-CNN: {fam.name} ({fam.extractor}); the template's mask head is complete, kept as written"]
    return [f"Mask R-CNN: {fam.name} ({fam.extractor}); added {', '.join(added)}",
            f"  (mask-head values of {fam.source}; fields the template had are kept)"]


def _pbtxt_enums(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: Ident(v) if k in MASK_ENUMS else _pbtxt_enums(v) for k, v in value.items()}
    return value


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "{...}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _set_model(doc, inputs: GenerateInputs) -> List[str]:
    if not isinstance(doc.get(FR, None), Message):
        raise ConfigError(f"{doc.source}: not a Faster/Mask R-CNN pipeline config (no '{FR}' block)")
    doc.set(f"{FR}.num_classes", inputs.label_map.max_id)
    notes = complete_mask_rcnn(doc)
    if inputs.image_size:
        _set_image_size(doc, inputs.image_size)
    return notes


def _set_image_size(doc, size: int) -> None:
    if doc.has(f"{RESIZER}.fixed_shape_resizer"):
        doc.set(f"{RESIZER}.fixed_shape_resizer.height", size)
        doc.set(f"{RESIZER}.fixed_shape_resizer.width", size)
    elif doc.has(f"{RESIZER}.keep_aspect_ratio_resizer"):
        doc.set(f"{RESIZER}.keep_aspect_ratio_resizer.min_dimension", size)
        doc.set(f"{RESIZER}.keep_aspect_ratio_resizer.max_dimension", size)
    else:
        raise ConfigError(f"{doc.source}: {RESIZER} has neither fixed_shape_resizer nor keep_aspect_ratio_resizer; "
                          "cannot apply --image-size")


# -- data and evaluation ----------------------------------------------------------------------
def _set_readers(doc, inputs: GenerateInputs) -> None:
    """Both readers, every coupled field; eval metrics with masks."""
    if not doc.has("train_input_reader") or not doc.has("eval_input_reader"):
        raise ConfigError(f"{doc.source}: a pipeline config needs both train_input_reader and eval_input_reader")
    mask_enum = Ident(TFOD_MASK_TYPES[inputs.mask_type])
    for r in input_reader_paths(doc):
        doc.set(f"{r}.label_map_path", inputs.label_map_path)
        globs = inputs.train if r == "train_input_reader" else inputs.val
        if globs:
            doc.set_all(f"{r}.tf_record_input_reader.input_path", globs)
        doc.set(f"{r}.load_instance_masks", True)
        doc.set(f"{r}.mask_type", mask_enum)
    if not inputs.val:
        log.warning("no --val records: eval_input_reader keeps the template's input path")
    doc.set_all("eval_config.metrics_set", list(METRICS_SETS))
    doc.set("eval_config.eval_instance_masks", True)


def _set_augment(doc, aug: Optional[Dict[str, Any]]) -> None:
    if aug is None:
        return
    image_size = tfod_image_size(doc)
    doc.remove("train_config.data_augmentation_options", missing_ok=True)
    if aug["flip"]:
        doc.add("train_config.data_augmentation_options", {"random_horizontal_flip": {}})
    if aug["vflip"]:
        doc.add("train_config.data_augmentation_options", {"random_vertical_flip": {}})
    if aug["scale"]:
        lo, hi = aug["scale"]
        opts: Dict[str, Any] = {"scale_min": float(lo), "scale_max": float(hi)}
        if image_size:
            opts = {"output_size": int(image_size), **opts}
        doc.add("train_config.data_augmentation_options", {"random_scale_crop_and_pad_to_square": opts})


# -- schedule ---------------------------------------------------------------------------------
def _schedule_path(doc) -> str:
    """``train_config.optimizer.<X>_optimizer.learning_rate.<schedule>`` of the template."""
    opt = doc.get("train_config.optimizer", None)
    if not isinstance(opt, Message) or not opt.fields:
        raise ConfigError(f"{doc.source}: template has no train_config.optimizer")
    opt_name = next((f.name for f in opt.fields if f.name.endswith("_optimizer")), None)
    if opt_name is None:
        raise ConfigError(f"{doc.source}: train_config.optimizer has no *_optimizer block")
    lr_path = f"train_config.optimizer.{opt_name}.learning_rate"
    lr_msg = doc.get(lr_path, None)
    if not isinstance(lr_msg, Message) or not lr_msg.fields:
        raise ConfigError(f"{doc.source}: {lr_path} is missing")
    sched = lr_msg.fields[0].name
    if sched not in SCHEDULES:
        raise ConfigError(f"{doc.source}: {lr_path}: unsupported schedule {sched!r} (expected {', '.join(SCHEDULES)})")
    return f"{lr_path}.{sched}"


def _scale_lr(doc, key: str, factor: float) -> None:
    """Multiply a learning rate by ``factor`` (a value left unscaled keeps its text, e.g. ``.04``)."""
    if doc.has(key) and factor != 1.0:
        doc.set(key, doc.get(key) * factor)


def _set_schedule(doc, plan: Plan) -> None:
    """Learning rate scaled with the batch size, steps and warm-up scaled to ``--steps``."""
    p = _schedule_path(doc)
    sched = p.rpartition(".")[2]
    tsteps, steps = doc.get("train_config.num_steps", 0), plan.steps
    total = steps if steps is not None else tsteps
    base_key = f"{p}.learning_rate_base" if sched.startswith("cosine") else (
        f"{p}.learning_rate" if sched.startswith("constant") else f"{p}.initial_learning_rate")
    f = plan.lr_factor(doc.get("train_config.batch_size", 1), doc.get(base_key, 0.002))
    _scale_lr(doc, base_key, f)
    if sched == "cosine_decay_learning_rate":
        _scale_lr(doc, f"{p}.warmup_learning_rate", f)
        t_total = doc.get(f"{p}.total_steps", tsteps)
        if steps is not None:
            doc.set(f"{p}.total_steps", steps)
        w = warmup(doc.get(f"{p}.warmup_steps", 0), t_total, steps, plan.warmup_steps)
        doc.set(f"{p}.warmup_steps", w)
        plan.notes.append(f"schedule: cosine decay over {total} steps, {w} warm-up steps")
    elif sched == "exponential_decay_learning_rate":
        if doc.has(f"{p}.decay_steps"):
            doc.set(f"{p}.decay_steps", scaled_steps(doc.get(f"{p}.decay_steps"), tsteps, steps))
        _scale_lr(doc, f"{p}.burnin_learning_rate", f)
        w = warmup(doc.get(f"{p}.burnin_steps", 0), tsteps, steps, plan.warmup_steps)
        doc.set(f"{p}.burnin_steps", w)
        plan.notes.append(f"schedule: exponential decay, decay_steps scaled to {total} steps, {w} burn-in steps")
    else:
        if plan.warmup_steps:
            raise ConfigError(f"{doc.source}: --warmup-steps needs a cosine schedule; the template has {sched}")
        for k in range(len(doc.get_all(f"{p}.schedule"))):
            doc.set(f"{p}.schedule[{k}].step", scaled_steps(doc.get(f"{p}.schedule[{k}].step"), tsteps, steps))
            _scale_lr(doc, f"{p}.schedule[{k}].learning_rate", f)
        plan.notes.append(f"schedule: {sched.replace('_learning_rate', '').replace('_', ' ')} over {total} steps")
    if steps is not None:
        doc.set("train_config.num_steps", steps)
    if plan.batch_size is not None:
        doc.set("train_config.batch_size", plan.batch_size)


# -- checkpoint, target, overrides ------------------------------------------------------------
def _set_checkpoint(doc, inputs: GenerateInputs) -> str:
    if not inputs.checkpoint:
        if inputs.checkpoint_type:
            raise ConfigError("--checkpoint-type needs --checkpoint")
        doc.remove("train_config.fine_tune_checkpoint", missing_ok=True)
        doc.remove("train_config.fine_tune_checkpoint_type", missing_ok=True)
        return "checkpoint: none, training from scratch (give --checkpoint to fine-tune)"
    ctype = inputs.checkpoint_type or DEFAULT_CHECKPOINT_TYPE
    doc.set("train_config.fine_tune_checkpoint", inputs.checkpoint)
    doc.set("train_config.fine_tune_checkpoint_type", TFOD_CHECKPOINT_TYPES[ctype])
    if not doc.has("train_config.fine_tune_checkpoint_version"):
        doc.set("train_config.fine_tune_checkpoint_version", Ident("V2"))
    return (f"checkpoint: {inputs.checkpoint} restored as '{TFOD_CHECKPOINT_TYPES[ctype]}'"
            + ("" if inputs.checkpoint_type else f" (default --checkpoint-type {DEFAULT_CHECKPOINT_TYPE})"))


def _set_target(doc, inputs: GenerateInputs) -> List[str]:
    bfloat16 = tfod_precision(inputs.target, inputs.mixed_precision)
    notes = apply_tfod_target(doc, inputs.target, bfloat16)
    how = "" if inputs.target_how == "--target" else f" ({inputs.target_how}; --target cpu|gpu|tpu to change)"
    return [notes[0].replace(f"target {inputs.target}:", f"target {inputs.target}{how}:", 1)] + notes[1:]


def pbtxt_value(raw: str, existing: Any):
    """A ``--set`` value as the Python value to write (typed like the field it replaces)."""
    s = raw.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return PbtxtDocument.parse(f"v: {s}").get("v")
    if s in ("true", "false"):
        return s == "true"
    if re.fullmatch(r"[-+]?\d+", s):
        return float(s) if isinstance(existing, float) and not isinstance(existing, bool) else int(s)
    if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        return float(s)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s):
        if isinstance(existing, Ident) or (existing is None and s.isupper()):
            return Ident(s)
    return raw


def _apply_overrides(doc, inputs: GenerateInputs) -> None:
    for key, raw, create in inputs.overrides:
        exists = doc.has(key)
        if not exists and not create and not schema_available():
            near = doc.suggest(key)
            raise ConfigError(f"--set {key}: no such field in {display_template(inputs.template)}{near or ''}; "
                              f"to add a field the template does not have, write --set '+{key}={raw}'")
        existing = doc.get(key, None) if exists else None
        if isinstance(existing, Message):
            raise ConfigError(f"--set {key}: is a message, not a value; set one of its fields")
        doc.set(key, pbtxt_value(raw, existing))


def prepend_comment(doc, lines: Sequence[str]) -> None:
    """Put ``lines`` as a ``#`` comment block at the top of the document."""
    block = "".join(f"# {l}".rstrip() + "\n" for l in lines) + "\n"
    if doc.root.fields:
        first = doc.root.fields[0]
        first.prefix = block + first.prefix.lstrip("\n")
    else:
        doc.root.trailing = block + doc.root.trailing


# -- entry ------------------------------------------------------------------------------------
def generate_tfod(inputs: GenerateInputs, plan: Plan, command: str) -> str:
    """Write the TFOD2 Mask R-CNN pipeline.config for ``inputs``; return its path."""
    doc = PbtxtDocument.load(inputs.template)
    notes = _set_model(doc, inputs)
    _set_readers(doc, inputs)
    _set_schedule(doc, plan)
    notes.append(_set_checkpoint(doc, inputs))
    notes += _set_target(doc, inputs)
    _set_augment(doc, inputs.augment)
    _apply_overrides(doc, inputs)
    prepend_comment(doc, header(inputs, plan, command, "TFOD2", notes))
    text = doc.dump()
    validate_with_schema(inputs.out, text=text)  # real schema when TFOD2 is importable
    io.atomic_write_text(inputs.out, text)
    return inputs.out


__all__ = ["generate_tfod", "complete_mask_rcnn", "input_reader_paths", "tfod_image_size", "extractor_family",
           "pbtxt_value", "prepend_comment", "TFOD_MASK_TYPES", "TFOD_CHECKPOINT_TYPES", "METRICS_SETS"]
