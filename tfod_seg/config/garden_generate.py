"""Model Garden experiment generation: a ``maskrcnn_*`` experiment YAML template in, the same
experiment with every coupled field set out (see `tfod_seg.config.generate`).

The steps: data and model (classes + background, masks, input size, input paths, validation
from the records), schedule (learning rate scaled with the batch size, boundaries and warm-up
scaled to ``--steps``), loop intervals (from ``--target`` when given, clamped to the training
length), checkpoint, runtime (strategy, precision), augmentation; then Model Garden's strict
override, ``--set`` overrides, validation, the header, and a load-back of the written file.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

from tfod_seg.config import garden
from tfod_seg.config.inputs import GenerateInputs, header
from tfod_seg.config.schedule import Plan, scaled_steps, warmup
from tfod_seg.config.targets import garden_target_values
from tfod_seg.config.templates import display_template
from tfod_seg.errors import ConfigError

DEFAULT_CHECKPOINT_TYPE = "detection"
# What each --checkpoint-type restores.
#   Model Garden's MaskRCNNTask.initialize restores `model` whole for 'all' (every variable must
#   match: same classes), else only the listed sub-modules ('backbone', 'decoder').
GARDEN_CHECKPOINT_MODULES: Dict[str, Any] = {
    "detection": ["backbone", "decoder"],  # a detection checkpoint: backbone + FPN; heads re-learned
    "classification": "backbone",          # an ImageNet classifier: backbone only
    "backbone": "backbone",
    "full": "all",                         # same model and classes: everything (resume, same label map)
}
INTERVALS = ("steps_per_loop", "summary_interval", "checkpoint_interval", "validation_interval")


def _lr_updates(kind: str, body, plan: Plan, template_batch: int, tsteps: int):
    """(updates of the learning-rate body, lr factor, description) for one schedule kind."""
    steps = plan.steps
    if kind == "stepwise":
        values = list(body.values)
        f = plan.lr_factor(template_batch, values[0])
        upd = {"values": [v * f for v in values], "boundaries": [scaled_steps(b, tsteps, steps) for b in body.boundaries]}
        return upd, f, f"stepwise, boundaries {upd['boundaries']}"
    if kind in ("cosine", "polynomial", "exponential"):
        f = plan.lr_factor(template_batch, body.initial_learning_rate)
        upd = {"initial_learning_rate": body.initial_learning_rate * f}
        if kind == "cosine":
            upd["decay_steps"] = steps if steps is not None else body.decay_steps
        else:
            upd["decay_steps"] = scaled_steps(body.decay_steps, tsteps, steps)
        return upd, f, f"{kind} decay over {upd['decay_steps']} steps"
    if kind == "constant":
        f = plan.lr_factor(template_batch, body.learning_rate)
        return {"learning_rate": body.learning_rate * f}, f, "constant"
    raise ConfigError(f"trainer.optimizer_config.learning_rate.type {kind!r} is not supported by the generator "
                      "(stepwise, cosine, polynomial, exponential, constant)")


def garden_schedule(cfg, plan: Plan, template_batch: int) -> Dict[str, Any]:
    """``trainer.optimizer_config`` updates: learning rate and warm-up scaled."""
    oc = cfg.trainer.optimizer_config
    tsteps = cfg.trainer.train_steps
    steps = plan.steps
    upd, f, desc = _lr_updates(oc.learning_rate.type, oc.learning_rate.get(), plan, template_batch, tsteps)
    out: Dict[str, Any] = {"learning_rate": {oc.learning_rate.type: upd}}
    wu = oc.warmup
    if wu.type in ("linear", "polynomial"):
        wb = wu.get()
        w = warmup(wb.warmup_steps, tsteps, steps, plan.warmup_steps)
        wupd: Dict[str, Any] = {"warmup_steps": w}
        if wu.type == "linear":
            wupd["warmup_learning_rate"] = wb.warmup_learning_rate * f
        out["warmup"] = {wu.type: wupd}
        desc += f", {w} warm-up steps"
    elif plan.warmup_steps:
        out["warmup"] = {"type": "linear", "linear": {"warmup_steps": warmup(0, tsteps, steps, plan.warmup_steps),
                                                      "warmup_learning_rate": 0.0}}
        desc += f", {plan.warmup_steps} warm-up steps"
    plan.notes.append(f"schedule: {steps if steps is not None else tsteps} steps, {desc}")
    return out


def garden_intervals(base: Dict[str, int], steps: int) -> Dict[str, int]:
    """Loop, summary, checkpoint and validation intervals clamped to ``steps`` (summaries on
    loop boundaries)."""
    spl = max(1, min(base["steps_per_loop"], steps))
    return {
        "steps_per_loop": spl,
        "summary_interval": max(spl, min(base["summary_interval"], steps) // spl * spl),
        "checkpoint_interval": max(1, min(base["checkpoint_interval"], steps)),
        "validation_interval": max(1, min(base["validation_interval"], steps)),
    }


def input_path(globs: Sequence[str]):
    """A Model Garden ``input_path``: the one glob as a string, several as a list."""
    return globs[0] if len(globs) == 1 else list(globs)


def _data_updates(cfg, inputs: GenerateInputs) -> Dict[str, Any]:
    upd: Dict[str, Any] = {
        "task.model.num_classes": inputs.label_map.max_id + 1,
        "task.model.include_mask": True,
        "task.train_data.input_path": input_path(inputs.train),
        "task.train_data.is_training": True,
        "task.validation_data.is_training": False,
        "task.annotation_file": "",
        "task.use_coco_metrics": True,
        "task.per_category_metrics": True,
        "trainer.validation_steps": -1,
    }
    if inputs.val:
        upd["task.validation_data.input_path"] = input_path(inputs.val)
    report = inputs.report or {}
    n_val = ((report.get("splits") or {}).get("val") or {}).get("images") if isinstance(report.get("splits"), dict) else None
    upd["task.validation_data.num_examples"] = int(n_val) if n_val else -1
    if inputs.image_size:
        upd["task.model.input_size"] = [int(inputs.image_size)] * 2 + [3]
    aug = inputs.augment
    if aug is not None:
        lo, hi = aug["scale"] or (1.0, 1.0)
        upd["task.train_data.parser"] = {"aug_rand_hflip": aug["flip"], "aug_rand_vflip": aug["vflip"],
                                         "aug_scale_min": lo, "aug_scale_max": hi}
    return upd


def _checkpoint_updates(inputs: GenerateInputs, upd: Dict[str, Any]) -> str:
    if not inputs.checkpoint:
        if inputs.checkpoint_type:
            raise ConfigError("--checkpoint-type needs --checkpoint")
        upd["task.init_checkpoint"] = ""
        return "checkpoint: none, training from scratch (give --checkpoint to fine-tune)"
    ctype = inputs.checkpoint_type or DEFAULT_CHECKPOINT_TYPE
    upd["task.init_checkpoint"] = inputs.checkpoint
    upd["task.init_checkpoint_modules"] = GARDEN_CHECKPOINT_MODULES[ctype]
    return (f"checkpoint: {inputs.checkpoint} ({ctype}: restores {GARDEN_CHECKPOINT_MODULES[ctype]})"
            + ("" if inputs.checkpoint_type else f" (default --checkpoint-type {DEFAULT_CHECKPOINT_TYPE})"))


def _runtime_updates(cfg, inputs: GenerateInputs, plan: Plan, upd: Dict[str, Any]) -> str:
    """Strategy, precision and loop intervals: the target's when --target/--strategy was given,
    else the template's (each template is set for the hardware its header names)."""
    base = {k: getattr(cfg.trainer, k) for k in INTERVALS}
    precision = inputs.mixed_precision
    if inputs.target_how != "default":
        values = garden_target_values(inputs.target, inputs.mixed_precision)
        precision = values["mixed_precision"]
        base.update({k: v for k, v in values.items() if k in base})
        upd["runtime.num_gpus"] = values["num_gpus"]
        note = (f"target {inputs.target} ({inputs.target_how}): {precision} precision, steps_per_loop "
                f"{values['steps_per_loop']}, summaries every {values['summary_interval']}, checkpoints every "
                f"{values['checkpoint_interval']} steps (clamped to training)")
    else:
        note = "target: the template's precision and loop intervals (give --target cpu|gpu|tpu to set them)"
    strategy = inputs.strategy or ("tpu" if inputs.target == "tpu" and inputs.target_how == "--target" else None)
    if strategy is not None:
        upd["runtime.distribution_strategy"] = strategy
    if precision is not None:
        upd["runtime.mixed_precision_dtype"] = precision
        upd["task.train_data.dtype"] = precision
        upd["task.validation_data.dtype"] = precision
    for k, v in garden_intervals(base, plan.steps or cfg.trainer.train_steps).items():
        upd[f"trainer.{k}"] = v
    return note


def _apply_sets(cfg, name: str, overrides) -> None:
    if not overrides:
        return
    sets = {}
    for key, raw, _create in overrides:
        data, _ = garden.parse_yaml_text(f"v: {raw}" if raw.strip() else "v: ''", f"--set {key}")
        sets[key] = data.get("v")
    garden.apply_overrides(cfg, sets, source="--set", experiment=name)


def schedule_updates(cfg, plan: Plan, upd: Dict[str, Any]) -> None:
    """The learning-rate schedule, batch size and training steps of ``plan`` into ``upd``."""
    upd["trainer.optimizer_config"] = garden_schedule(cfg, plan, cfg.task.train_data.global_batch_size)
    if plan.batch_size is not None:
        upd["task.train_data.global_batch_size"] = plan.batch_size
    if plan.steps is not None:
        upd["trainer.train_steps"] = plan.steps


def write_experiment(cfg, name: str, upd: Dict[str, Any], inputs: GenerateInputs, plan: Plan, command: str,
                     engine: str, extra: Sequence[str]) -> str:
    """Apply the generated values ``upd`` then the ``--set`` overrides, validate, and write the
    experiment with its header (and the template's own header); the file must load back."""
    garden.apply_overrides(cfg, upd, source=f"{display_template(inputs.template)} (generated values)", experiment=name)
    _apply_sets(cfg, name, inputs.overrides)
    garden.validate(cfg, inputs.out)
    lines = header(inputs, plan, command, engine, extra)
    tmpl_lines = [l for l in garden.read_header_comments(inputs.template) if not garden.HEADER_RE.match("# " + l)]
    if tmpl_lines:
        lines += ["", "Template:"] + ["  " + l if l else "" for l in tmpl_lines]
    path = garden.dump_experiment(cfg, inputs.out, name, header=lines)
    garden.load_experiment(path)  # the file we wrote must load back (strict)
    return path


def generate_garden(inputs: GenerateInputs, plan: Plan, command: str) -> str:
    """Write the Model Garden experiment YAML for ``inputs``; return its path."""
    if inputs.mask_type != "png":
        raise ConfigError("--mask-type numerical: Model Garden's TF Example decoder reads PNG masks only; "
                          "convert the records with --mask-type png (the default)")
    name, cfg = garden.load_experiment(inputs.template)
    upd = _data_updates(cfg, inputs)
    schedule_updates(cfg, plan, upd)
    extra: List[str] = [_checkpoint_updates(inputs, upd), _runtime_updates(cfg, inputs, plan, upd),
                        "validation: COCO box + mask metrics from the validation records (annotation_file ''; Model "
                        "Garden caches them as MODEL_DIR/annotation.json: delete it if the validation records change)"]
    return write_experiment(cfg, name, upd, inputs, plan, command, f"Model Garden {name}", extra)


__all__ = ["generate_garden", "garden_schedule", "garden_intervals", "input_path", "schedule_updates",
           "write_experiment", "GARDEN_CHECKPOINT_MODULES"]
