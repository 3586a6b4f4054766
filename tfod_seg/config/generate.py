"""Mask R-CNN config generation: template → generated file → ``--set`` overrides.

The template's kind picks the target: a TFOD2 ``.config`` (protobuf text, edited with
`tfod_seg.pbtxt` so the template's comments and order survive) or a Model Garden
experiment ``.yaml`` (built with `tfod_seg.config.garden`, Model Garden's strict override).

Every coupled field is set from the same few inputs, so the result is correct by construction:

TFOD2 (``model.faster_rcnn``): ``num_classes`` = label-map size; ``number_of_stages: 3``;
``predict_instance_masks: true``; on BOTH input readers ``load_instance_masks: true``, a
``mask_type`` matching the records (``PNG_MASKS``/``NUMERICAL_MASKS``), ``label_map_path`` and the
record globs; ``eval_config`` ``metrics_set`` = coco_detection_metrics + coco_mask_metrics and
``eval_instance_masks: true``; ``fine_tune_checkpoint`` + ``fine_tune_checkpoint_type`` (removed
when there is no checkpoint: the template's ``PATH_TO_BE_CONFIGURED`` would fail); batch size;
``num_steps`` with the schedule scaled to it (cosine ``total_steps``; warm-up scaled
proportionally and always shorter than training).

Model Garden (``maskrcnn_*`` experiments): ``task.model.num_classes`` = label-map size + 1 (Model
Garden counts the background); ``include_mask``; ``input_size``; train/validation
``input_path``; ``global_batch_size``; ``trainer.train_steps`` with the schedule and the loop /
summary / checkpoint / validation intervals scaled or clamped to it; ``init_checkpoint`` and
``init_checkpoint_modules`` (see `GARDEN_CHECKPOINT_MODULES`); ``runtime`` (strategy, mixed
precision, with the data ``dtype`` to match); validation with COCO metrics computed from the
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
import re
import shlex
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from tfod_seg.errors import ConfigError
from tfod_seg.records.metadata import find_report, read_report

log = logging.getLogger(__name__)

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "pipelines")
TFOD_EXTENSIONS = (".config", ".pbtxt")
GARDEN_EXTENSIONS = (".yaml", ".yml")
CHECKPOINT_TYPES = ("detection", "classification", "backbone", "full")
DEFAULT_CHECKPOINT_TYPE = "detection"
# What each --checkpoint-type restores.
#   Model Garden's MaskRCNNTask.initialize restores `model` whole for 'all' (every variable must
#   match: same classes), else only the listed sub-modules ('backbone', 'decoder').
GARDEN_CHECKPOINT_MODULES: Dict[str, Union[str, List[str]]] = {
    "detection": ["backbone", "decoder"],  # a detection checkpoint: backbone + FPN; heads re-learned
    "classification": "backbone",          # an ImageNet classifier: backbone only
    "backbone": "backbone",
    "full": "all",                         # same model and classes: everything (resume, same label map)
}
#   TFOD2 fine_tune_checkpoint_type values.
TFOD_CHECKPOINT_TYPES = {"detection": "detection", "classification": "classification",
                         "backbone": "classification", "full": "full"}
TFOD_MASK_TYPES = {"png": "PNG_MASKS", "numerical": "NUMERICAL_MASKS"}
METRICS_SETS = ("coco_detection_metrics", "coco_mask_metrics")
AUGMENTATIONS = ("flip", "vflip", "scale", "none")
DEFAULT_SCALE = (0.8, 1.25)
MIXED_PRECISION = ("float32", "float16", "bfloat16")
STRATEGIES = ("mirrored", "one_device", "multi_worker_mirrored", "tpu")
PLACEHOLDER = "PATH_TO_BE_CONFIGURED"


# -- templates ------------------------------------------------------------------------------
def template_kind(path: str) -> str:
    """``'tfod'`` for ``.config``/``.pbtxt``, ``'garden'`` for ``.yaml``/``.yml``."""
    ext = os.path.splitext(path)[1].lower()
    if ext in TFOD_EXTENSIONS:
        return "tfod"
    if ext in GARDEN_EXTENSIONS:
        return "garden"
    raise ConfigError(f"{path}: unknown config kind {ext or '(no extension)'!r}; expected a TFOD2 "
                      f"{'/'.join(TFOD_EXTENSIONS)} or a Model Garden {'/'.join(GARDEN_EXTENSIONS)} file")


def template_paths(directory: Optional[str] = None) -> List[str]:
    """Every template file in ``pipelines/`` (sorted)."""
    directory = directory or TEMPLATE_DIR
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, f) for f in os.listdir(directory)
                  if f.lower().endswith(TFOD_EXTENSIONS + GARDEN_EXTENSIONS) and not f.startswith("."))


def find_template(template: str | os.PathLike) -> str:
    """A template path, or a name in ``pipelines/`` (with or without its extension)."""
    t = os.fspath(template)
    if os.path.isfile(t):
        return t
    for p in template_paths():
        base = os.path.basename(p)
        if t in (base, os.path.splitext(base)[0]):
            return p
    import difflib

    names = [os.path.splitext(os.path.basename(p))[0] for p in template_paths()]
    near = difflib.get_close_matches(os.path.splitext(os.path.basename(t))[0], names, n=3, cutoff=0.4)
    hint = f"; nearest templates: {', '.join(near)}" if near else ""
    raise ConfigError(f"{t}: no such template file or name in {TEMPLATE_DIR}{hint} (see `tfod-seg templates`)")


def _display_template(path: str) -> str:
    ap = os.path.abspath(path)
    if os.path.dirname(ap) == os.path.abspath(TEMPLATE_DIR):
        return "pipelines/" + os.path.basename(ap)
    return path


# -- small parsers --------------------------------------------------------------------------
def parse_augment(augment: Union[None, str, Sequence[str]]) -> Optional[Dict[str, Any]]:
    """``"flip,scale=0.5:2"`` → ``{'flip': True, 'vflip': False, 'scale': (0.5, 2.0)}``; None → None."""
    if augment is None:
        return None
    items = augment.split(",") if isinstance(augment, str) else list(augment)
    out: Dict[str, Any] = {"flip": False, "vflip": False, "scale": None}
    for raw in (i.strip() for i in items):
        if not raw:
            continue
        name, _, arg = raw.partition("=")
        if name == "none":
            continue
        if name not in AUGMENTATIONS:
            import difflib

            near = difflib.get_close_matches(name, AUGMENTATIONS, n=2)
            raise ConfigError(f"--augment: unknown augmentation {name!r}; expected one of {', '.join(AUGMENTATIONS)}"
                              + (f" (did you mean {' or '.join(near)}?)" if near else ""))
        if name == "scale":
            if arg:
                m = re.fullmatch(r"\s*([0-9.]+)\s*[:\-]\s*([0-9.]+)\s*", arg)
                if not m or not 0 < float(m.group(1)) <= float(m.group(2)):
                    raise ConfigError(f"--augment: bad scale range {arg!r}; expected MIN:MAX with 0 < MIN <= MAX, e.g. scale=0.5:2.0")
                out["scale"] = (float(m.group(1)), float(m.group(2)))
            else:
                out["scale"] = DEFAULT_SCALE
        else:
            if arg:
                raise ConfigError(f"--augment: {name} takes no value, got {raw!r}")
            out[name] = True
    return out


def parse_override(item: str) -> Tuple[str, str, bool]:
    """``'key=value'`` → (key, raw value, create) where ``'+key=value'`` sets create."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set trainer.train_steps=1000")
    key, _, value = item.partition("=")
    key = key.strip()
    create = key.startswith("+")
    key = key.lstrip("+")
    if not key:
        raise ConfigError(f"--set {item!r}: empty key")
    return key, value, create


def _globs(patterns: Union[None, str, Sequence[str]]) -> List[str]:
    if patterns is None:
        return []
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [p for p in os.fspath(patterns).split(",")]
    return [_abs(p.strip()) for p in patterns if str(p).strip()]


def _abs(p: Optional[str]) -> Optional[str]:
    if p is None:
        return None
    p = os.fspath(p)
    if "://" in p or not p:
        return p
    return os.path.abspath(os.path.expanduser(p))


def _load_label_map(label_map):
    from tfod_seg.labelmap import LabelMap, read_label_map

    if isinstance(label_map, LabelMap):
        return label_map, label_map.path
    path = os.fspath(label_map)
    return read_label_map(path, allow_gaps=True), path


# -- schedule arithmetic (shared) -----------------------------------------------------------
def _scaled_steps(value: float, template_steps: int, steps: Optional[int]) -> int:
    if steps is None or not template_steps:
        return int(value)
    return max(1, int(round(value * steps / template_steps)))


def _warmup(template_warmup: int, template_steps: int, steps: Optional[int], warmup_steps: Optional[int]) -> int:
    total = steps if steps is not None else template_steps
    if warmup_steps is not None:
        if warmup_steps < 0:
            raise ConfigError(f"--warmup-steps must be >= 0, got {warmup_steps}")
        if total and warmup_steps >= total:
            raise ConfigError(f"--warmup-steps {warmup_steps} must be smaller than the number of training steps ({total})")
        return int(warmup_steps)
    if not template_warmup:
        return 0
    w = _scaled_steps(template_warmup, template_steps, steps) if steps is not None else int(template_warmup)
    if total and w >= total:
        w = max(0, total // 10)
    return w


class _Plan:
    """The decisions shared by both engines, and the notes that go into the header."""

    def __init__(self, batch_size, steps, lr, warmup_steps):
        self.batch_size, self.steps, self.lr, self.warmup_steps = batch_size, steps, lr, warmup_steps
        self.notes: List[str] = []

    def lr_factor(self, template_batch: int, template_lr: float) -> float:
        """Multiplier for every learning-rate value of the template."""
        if self.lr is not None:
            if self.lr <= 0:
                raise ConfigError(f"--lr must be > 0, got {self.lr}")
            f = self.lr / template_lr if template_lr else 1.0
            self.notes.append(f"learning rate: {_fmt(self.lr)} (--lr; template's {_fmt(template_lr)})")
            return f
        if self.batch_size is not None and template_batch and self.batch_size != template_batch:
            f = self.batch_size / template_batch
            self.notes.append(
                f"learning rate: {_fmt(template_lr * f)} = template's {_fmt(template_lr)} x {self.batch_size}/{template_batch} "
                f"(scaled linearly with the batch size because --lr was not given)")
            return f
        self.notes.append(f"learning rate: {_fmt(template_lr)} (template's)")
        return 1.0


def _fmt(x: float) -> str:
    return f"{x:.6g}"


# -- public entry ---------------------------------------------------------------------------
def generate_config(template, *, label_map, train, val, model_dir, out, batch_size=None, steps=None, lr=None,
                    warmup_steps=None, image_size=None, checkpoint=None, checkpoint_type=None, augment=None,
                    mask_type="png", overrides: Sequence[str] = (), strategy=None, mixed_precision=None) -> str:
    """Write a Mask R-CNN config for ``template`` (path or name in ``pipelines/``) to ``out``.

    ``train``/``val`` are record globs (a string, comma-separated, or a list); ``label_map`` a
    ``label_map.pbtxt`` path or `LabelMap`; ``model_dir`` is only recorded in the header (the
    training command). Returns the path written. See the module docstring for what is set.
    """
    tpath = find_template(template)
    kind = template_kind(tpath)
    if steps is not None and steps <= 0:
        raise ConfigError(f"--steps must be > 0, got {steps}")
    if batch_size is not None and batch_size <= 0:
        raise ConfigError(f"--batch-size must be > 0, got {batch_size}")
    if image_size is not None and image_size <= 0:
        raise ConfigError(f"--image-size must be > 0, got {image_size}")
    if checkpoint_type is not None and checkpoint_type not in CHECKPOINT_TYPES:
        raise ConfigError(f"--checkpoint-type must be one of {', '.join(CHECKPOINT_TYPES)}, got {checkpoint_type!r}")
    if mask_type not in TFOD_MASK_TYPES:
        raise ConfigError(f"--mask-type must be one of {', '.join(TFOD_MASK_TYPES)}, got {mask_type!r}")
    if mixed_precision is not None and mixed_precision not in MIXED_PRECISION:
        raise ConfigError(f"--mixed-precision must be one of {', '.join(MIXED_PRECISION)}, got {mixed_precision!r}")
    if strategy is not None and strategy not in STRATEGIES:
        raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    lm, lm_path = _load_label_map(label_map)
    inputs = dict(
        template=tpath, label_map=lm, label_map_path=_abs(lm_path), train=_globs(train), val=_globs(val),
        model_dir=model_dir, out=os.fspath(out), checkpoint=_abs(checkpoint),
        checkpoint_type=checkpoint_type, augment=parse_augment(augment), mask_type=mask_type,
        image_size=image_size, overrides=[parse_override(o) for o in overrides], strategy=strategy,
        mixed_precision=mixed_precision,
    )
    if not inputs["train"]:
        raise ConfigError("--train: give the training record glob(s), e.g. 'out/train-*.tfrecord'")
    if not inputs["label_map_path"]:
        raise ConfigError("--label-map: the label map must be a file (its path goes into the config)")
    inputs["report"] = read_report(find_report(inputs["train"]))
    plan = _Plan(batch_size, steps, lr, warmup_steps)
    command = _command_line(template, label_map=lm_path, train=train, val=val, model_dir=model_dir, out=out,
                            batch_size=batch_size, steps=steps, lr=lr, warmup_steps=warmup_steps,
                            image_size=image_size, checkpoint=checkpoint, checkpoint_type=checkpoint_type,
                            augment=augment, mask_type=mask_type, overrides=overrides, strategy=strategy,
                            mixed_precision=mixed_precision)
    if kind == "tfod":
        return _generate_tfod(inputs, plan, command)
    return _generate_garden(inputs, plan, command)


def _command_line(template, **kw) -> str:
    parts = ["tfod-seg", "config", "--template", os.fspath(template)]
    order = [("label_map", "--label-map"), ("train", "--train"), ("val", "--val"), ("model_dir", "--model-dir"),
             ("batch_size", "--batch-size"), ("steps", "--steps"), ("lr", "--lr"), ("warmup_steps", "--warmup-steps"),
             ("image_size", "--image-size"), ("checkpoint", "--checkpoint"), ("checkpoint_type", "--checkpoint-type"),
             ("augment", "--augment"), ("strategy", "--strategy"), ("mixed_precision", "--mixed-precision")]
    for key, flag in order:
        v = kw.get(key)
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            v = ",".join(os.fspath(x) for x in v)
        parts += [flag, os.fspath(v) if isinstance(v, os.PathLike) else str(v)]
    if kw.get("mask_type") not in (None, "png"):
        parts += ["--mask-type", kw["mask_type"]]
    for o in kw.get("overrides") or ():
        parts += ["--set", o]
    parts += ["--out", os.fspath(kw["out"])]
    return " ".join(shlex.quote(p) for p in parts)


def _header(inputs, plan: _Plan, command: str, engine: str, extra: Sequence[str] = ()) -> List[str]:
    lm = inputs["label_map"]
    names = ", ".join(lm.names[:8]) + (", ..." if len(lm) > 8 else "")
    lines = [
        f"Generated by tfod-seg config ({engine}) from {_display_template(inputs['template'])}; edit with",
        "`tfod-seg config ... --set KEY=VALUE` rather than by hand, then `tfod-seg config --check` it.",
        f"command: {command}",
        f"label map: {inputs['label_map_path']} ({len(lm)} classes: {names})",
    ]
    lines += list(extra)
    lines += plan.notes
    lines.append(f"train: tfod-seg train --config {inputs['out']} --model-dir {inputs['model_dir']}")
    return lines


# -- TFOD2 ----------------------------------------------------------------------------------
def _pbtxt_value(raw: str, existing: Any):
    from tfod_seg.pbtxt import Ident, PbtxtDocument

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


def _tfod_lr(doc, plan: _Plan, template_batch: int) -> None:
    from tfod_seg.pbtxt import Message

    opt_root = "train_config.optimizer"
    opt = doc.get(opt_root, None)
    if not isinstance(opt, Message) or not opt.fields:
        raise ConfigError(f"{doc.source}: template has no train_config.optimizer")
    opt_name = next((f.name for f in opt.fields if f.name.endswith("_optimizer")), None)
    if opt_name is None:
        raise ConfigError(f"{doc.source}: train_config.optimizer has no *_optimizer block")
    lr_path = f"{opt_root}.{opt_name}.learning_rate"
    lr_msg = doc.get(lr_path, None)
    if not isinstance(lr_msg, Message) or not lr_msg.fields:
        raise ConfigError(f"{doc.source}: {lr_path} is missing")
    sched = lr_msg.fields[0].name
    p = f"{lr_path}.{sched}"
    tsteps = doc.get("train_config.num_steps", 0)
    steps = plan.steps
    total = steps if steps is not None else tsteps
    if sched == "cosine_decay_learning_rate":
        f = _scale_lr(doc, f"{p}.learning_rate_base", plan, template_batch)
        if doc.has(f"{p}.warmup_learning_rate"):
            doc.set(f"{p}.warmup_learning_rate", doc.get(f"{p}.warmup_learning_rate") * f)
        t_total = doc.get(f"{p}.total_steps", tsteps)
        if steps is not None:
            doc.set(f"{p}.total_steps", steps)
        w = _warmup(doc.get(f"{p}.warmup_steps", 0), t_total, steps, plan.warmup_steps)
        doc.set(f"{p}.warmup_steps", w)
        plan.notes.append(f"schedule: cosine decay over {total} steps, {w} warm-up steps")
    elif sched == "constant_learning_rate":
        f = _scale_lr(doc, f"{p}.learning_rate", plan, template_batch)
        if plan.warmup_steps:
            raise ConfigError(f"{doc.source}: --warmup-steps needs a cosine schedule; the template has {sched}")
        plan.notes.append(f"schedule: constant over {total} steps")
    elif sched == "exponential_decay_learning_rate":
        f = _scale_lr(doc, f"{p}.initial_learning_rate", plan, template_batch)
        if doc.has(f"{p}.decay_steps"):
            doc.set(f"{p}.decay_steps", _scaled_steps(doc.get(f"{p}.decay_steps"), tsteps, steps))
        if doc.has(f"{p}.burnin_learning_rate"):
            doc.set(f"{p}.burnin_learning_rate", doc.get(f"{p}.burnin_learning_rate") * f)
        w = _warmup(doc.get(f"{p}.burnin_steps", 0), tsteps, steps, plan.warmup_steps)
        doc.set(f"{p}.burnin_steps", w)
        plan.notes.append(f"schedule: exponential decay, decay_steps scaled to {total} steps, {w} burn-in steps")
    elif sched == "manual_step_learning_rate":
        f = _scale_lr(doc, f"{p}.initial_learning_rate", plan, template_batch)
        for k in range(len(doc.get_all(f"{p}.schedule"))):
            doc.set(f"{p}.schedule[{k}].step", _scaled_steps(doc.get(f"{p}.schedule[{k}].step"), tsteps, steps))
            doc.set(f"{p}.schedule[{k}].learning_rate", doc.get(f"{p}.schedule[{k}].learning_rate") * f)
        if plan.warmup_steps:
            raise ConfigError(f"{doc.source}: --warmup-steps needs a cosine schedule; the template has {sched}")
        plan.notes.append(f"schedule: manual steps scaled to {total} steps")
    else:
        raise ConfigError(f"{doc.source}: {lr_path}: unsupported schedule {sched!r} (expected cosine_decay_learning_rate, "
                          "constant_learning_rate, exponential_decay_learning_rate or manual_step_learning_rate)")
    if steps is not None:
        doc.set("train_config.num_steps", steps)


def _tfod_resizer(doc, size: int) -> None:
    r = "model.faster_rcnn.image_resizer"
    if doc.has(f"{r}.fixed_shape_resizer"):
        doc.set(f"{r}.fixed_shape_resizer.height", size)
        doc.set(f"{r}.fixed_shape_resizer.width", size)
    elif doc.has(f"{r}.keep_aspect_ratio_resizer"):
        doc.set(f"{r}.keep_aspect_ratio_resizer.min_dimension", size)
        doc.set(f"{r}.keep_aspect_ratio_resizer.max_dimension", size)
    else:
        raise ConfigError(f"{doc.source}: {r} has neither fixed_shape_resizer nor keep_aspect_ratio_resizer; "
                          "cannot apply --image-size")


def tfod_image_size(doc) -> Optional[int]:
    r = "model.faster_rcnn.image_resizer"
    if doc.has(f"{r}.fixed_shape_resizer"):
        return doc.get(f"{r}.fixed_shape_resizer.height", None)
    if doc.has(f"{r}.keep_aspect_ratio_resizer"):
        return doc.get(f"{r}.keep_aspect_ratio_resizer.max_dimension", None)
    return None


def _tfod_augment(doc, aug: Dict[str, Any], image_size: Optional[int]) -> None:
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


def _scale_lr(doc, key: str, plan, template_batch) -> float:
    """Scale the template's base learning rate at ``key`` by the plan's factor; return the factor."""
    base = doc.get(key, 0.002)
    f = plan.lr_factor(template_batch, base)
    doc.set(key, base * f)
    return f


def input_reader_paths(doc) -> List[str]:
    """Dotted paths of a TFOD2 pipeline.config's input readers: the train reader, then each
    eval reader (indexed when there are several)."""
    out = []
    if doc.has("train_input_reader"):
        out.append("train_input_reader")
    n = len(doc.get_all("eval_input_reader"))
    out += ["eval_input_reader" if n == 1 else f"eval_input_reader[{k}]" for k in range(n)]
    return out


def _generate_tfod(inputs, plan: _Plan, command: str) -> str:
    from tfod_seg.pbtxt import Ident, Message, PbtxtDocument, validate_with_schema

    if inputs["strategy"] is not None:
        raise ConfigError("--strategy applies to Model Garden experiments; TFOD2 picks its distribution strategy "
                          "from model_main_tf2 flags (use `tfod-seg train --strategy`)")
    doc = PbtxtDocument.load(inputs["template"])
    fr = "model.faster_rcnn"
    if not isinstance(doc.get(fr, None), Message):
        raise ConfigError(f"{doc.source}: not a Faster/Mask R-CNN pipeline config (no '{fr}' block)")
    lm = inputs["label_map"]
    doc.set(f"{fr}.num_classes", lm.max_id)
    doc.set(f"{fr}.number_of_stages", 3)
    mp = f"{fr}.second_stage_box_predictor.mask_rcnn_box_predictor"
    if not isinstance(doc.get(mp, None), Message):
        raise ConfigError(f"{doc.source}: {mp} is missing; Mask R-CNN needs the mask_rcnn_box_predictor")
    doc.set(f"{mp}.predict_instance_masks", True)
    if inputs["image_size"]:
        _tfod_resizer(doc, inputs["image_size"])
    # input readers: both of them, every coupled field
    if not doc.has("train_input_reader") or not doc.has("eval_input_reader"):
        raise ConfigError(f"{doc.source}: a pipeline config needs both train_input_reader and eval_input_reader")
    mask_enum = Ident(TFOD_MASK_TYPES[inputs["mask_type"]])
    for r in input_reader_paths(doc):
        doc.set(f"{r}.label_map_path", inputs["label_map_path"])
        globs = inputs["train"] if r == "train_input_reader" else inputs["val"]
        if globs:
            doc.set_all(f"{r}.tf_record_input_reader.input_path", globs)
        doc.set(f"{r}.load_instance_masks", True)
        doc.set(f"{r}.mask_type", mask_enum)
    if not inputs["val"]:
        log.warning("no --val records: eval_input_reader keeps the template's input path")
    doc.set_all("eval_config.metrics_set", list(METRICS_SETS))
    doc.set("eval_config.eval_instance_masks", True)
    # batch size + schedule
    template_batch = doc.get("train_config.batch_size", 1)
    _tfod_lr(doc, plan, template_batch)
    if plan.batch_size is not None:
        doc.set("train_config.batch_size", plan.batch_size)
    # checkpoint
    extra = []
    if inputs["checkpoint"]:
        ctype = inputs["checkpoint_type"] or DEFAULT_CHECKPOINT_TYPE
        doc.set("train_config.fine_tune_checkpoint", inputs["checkpoint"])
        doc.set("train_config.fine_tune_checkpoint_type", TFOD_CHECKPOINT_TYPES[ctype])
        if not doc.has("train_config.fine_tune_checkpoint_version"):
            doc.set("train_config.fine_tune_checkpoint_version", Ident("V2"))
        extra.append(f"checkpoint: {inputs['checkpoint']} restored as '{TFOD_CHECKPOINT_TYPES[ctype]}'"
                     + ("" if inputs["checkpoint_type"] else f" (default --checkpoint-type {DEFAULT_CHECKPOINT_TYPE})"))
    else:
        if inputs["checkpoint_type"]:
            raise ConfigError("--checkpoint-type needs --checkpoint")
        doc.remove("train_config.fine_tune_checkpoint", missing_ok=True)
        doc.remove("train_config.fine_tune_checkpoint_type", missing_ok=True)
        extra.append("checkpoint: none, training from scratch (give --checkpoint to fine-tune)")
    if inputs["mixed_precision"] is not None:
        doc.set("train_config.use_bfloat16", inputs["mixed_precision"] == "bfloat16")
    if inputs["augment"] is not None:
        _tfod_augment(doc, inputs["augment"], tfod_image_size(doc))
    # --set overrides (last)
    from tfod_seg.pbtxt import schema_available

    for key, raw, create in inputs["overrides"]:
        exists = doc.has(key)
        if not exists and not create and not schema_available():
            near = doc._suggest(key)  # noqa: SLF001
            raise ConfigError(f"--set {key}: no such field in {_display_template(inputs['template'])}{near or ''}; "
                              f"to add a field the template does not have, write --set '+{key}={raw}'")
        existing = doc.get(key, None) if exists else None
        if isinstance(existing, Message):
            raise ConfigError(f"--set {key}: is a message, not a value; set one of its fields")
        doc.set(key, _pbtxt_value(raw, existing))
    # header
    header = _header(inputs, plan, command, "TFOD2", extra)
    _prepend_comment(doc, header)
    text = doc.dump()
    validate_with_schema(inputs["out"], text=text)  # real schema when TFOD2 is importable
    from tfod_seg.io import atomic_write_text

    atomic_write_text(inputs["out"], text)
    return inputs["out"]


def _prepend_comment(doc, lines: Sequence[str]) -> None:
    block = "".join(f"# {l}".rstrip() + "\n" for l in lines) + "\n"
    if doc.root.fields:
        first = doc.root.fields[0]
        first.prefix = block + first.prefix.lstrip("\n")
    else:
        doc.root.trailing = block + doc.root.trailing


# -- Model Garden ---------------------------------------------------------------------------
def _garden_lr(cfg, plan: _Plan, template_batch: int) -> Dict[str, Any]:
    oc = cfg.trainer.optimizer_config
    lr = oc.learning_rate
    kind = lr.type
    body = lr.get()
    tsteps = cfg.trainer.train_steps
    steps = plan.steps
    total = steps if steps is not None else tsteps
    upd: Dict[str, Any] = {}
    if kind == "stepwise":
        values = list(body.values)
        f = plan.lr_factor(template_batch, values[0])
        upd = {"values": [v * f for v in values],
               "boundaries": [_scaled_steps(b, tsteps, steps) for b in body.boundaries]}
        desc = f"stepwise, boundaries {upd['boundaries']}"
    elif kind in ("cosine", "polynomial", "exponential"):
        f = plan.lr_factor(template_batch, body.initial_learning_rate)
        upd = {"initial_learning_rate": body.initial_learning_rate * f}
        if kind == "cosine":
            upd["decay_steps"] = total if steps is not None else body.decay_steps
        else:
            upd["decay_steps"] = _scaled_steps(body.decay_steps, tsteps, steps)
        desc = f"{kind} decay over {upd['decay_steps']} steps"
    elif kind == "constant":
        f = plan.lr_factor(template_batch, body.learning_rate)
        upd = {"learning_rate": body.learning_rate * f}
        desc = "constant"
    else:
        raise ConfigError(f"trainer.optimizer_config.learning_rate.type {kind!r} is not supported by the generator "
                          "(stepwise, cosine, polynomial, exponential, constant)")
    out: Dict[str, Any] = {"learning_rate": {kind: upd}}
    wu = oc.warmup
    if wu.type in ("linear", "polynomial"):
        wb = wu.get()
        w = _warmup(wb.warmup_steps, tsteps, steps, plan.warmup_steps)
        wupd: Dict[str, Any] = {"warmup_steps": w}
        if wu.type == "linear":
            wupd["warmup_learning_rate"] = wb.warmup_learning_rate * f
        out["warmup"] = {wu.type: wupd}
        desc += f", {w} warm-up steps"
    elif plan.warmup_steps:
        out["warmup"] = {"type": "linear", "linear": {"warmup_steps": _warmup(0, tsteps, steps, plan.warmup_steps),
                                                      "warmup_learning_rate": 0.0}}
        desc += f", {plan.warmup_steps} warm-up steps"
    plan.notes.append(f"schedule: {total} steps, {desc}")
    return out


def _garden_intervals(cfg, steps: int) -> Dict[str, int]:
    t = cfg.trainer
    spl = max(1, min(t.steps_per_loop, steps))
    summ = max(spl, min(t.summary_interval, steps) // spl * spl)
    return {
        "steps_per_loop": spl,
        "summary_interval": summ,
        "checkpoint_interval": max(1, min(t.checkpoint_interval, steps)),
        "validation_interval": max(1, min(t.validation_interval, steps)),
    }


def _garden_input_path(globs: Sequence[str]):
    return globs[0] if len(globs) == 1 else list(globs)


def _generate_garden(inputs, plan: _Plan, command: str) -> str:
    from tfod_seg.config import garden

    if inputs["mask_type"] != "png":
        raise ConfigError("--mask-type numerical: Model Garden's TF Example decoder reads PNG masks only; "
                          "convert the records with --mask-type png (the default)")
    name, cfg = garden.load_experiment(inputs["template"])
    lm = inputs["label_map"]
    report = inputs["report"]
    upd: Dict[str, Any] = {
        "task.model.num_classes": lm.max_id + 1,
        "task.model.include_mask": True,
        "task.train_data.input_path": _garden_input_path(inputs["train"]),
        "task.train_data.is_training": True,
        "task.validation_data.is_training": False,
        "task.annotation_file": "",
        "task.use_coco_metrics": True,
        "task.per_category_metrics": True,
        "trainer.validation_steps": -1,
    }
    if inputs["val"]:
        upd["task.validation_data.input_path"] = _garden_input_path(inputs["val"])
    n_val = None
    if report and isinstance(report.get("splits"), dict) and report["splits"].get("val"):
        n_val = report["splits"]["val"].get("images")
    upd["task.validation_data.num_examples"] = int(n_val) if n_val else -1
    if inputs["image_size"]:
        upd["task.model.input_size"] = [int(inputs["image_size"])] * 2 + [3]
    template_batch = cfg.task.train_data.global_batch_size
    opt = _garden_lr(cfg, plan, template_batch)
    upd["trainer.optimizer_config"] = opt
    if plan.batch_size is not None:
        upd["task.train_data.global_batch_size"] = plan.batch_size
    if plan.steps is not None:
        upd["trainer.train_steps"] = plan.steps
    for k, v in _garden_intervals(cfg, plan.steps or cfg.trainer.train_steps).items():
        upd[f"trainer.{k}"] = v
    extra = []
    if inputs["checkpoint"]:
        ctype = inputs["checkpoint_type"] or DEFAULT_CHECKPOINT_TYPE
        upd["task.init_checkpoint"] = inputs["checkpoint"]
        upd["task.init_checkpoint_modules"] = GARDEN_CHECKPOINT_MODULES[ctype]
        extra.append(f"checkpoint: {inputs['checkpoint']} ({ctype}: restores {GARDEN_CHECKPOINT_MODULES[ctype]})"
                     + ("" if inputs["checkpoint_type"] else f" (default --checkpoint-type {DEFAULT_CHECKPOINT_TYPE})"))
    else:
        if inputs["checkpoint_type"]:
            raise ConfigError("--checkpoint-type needs --checkpoint")
        upd["task.init_checkpoint"] = ""
        extra.append("checkpoint: none, training from scratch (give --checkpoint to fine-tune)")
    if inputs["strategy"] is not None:
        upd["runtime.distribution_strategy"] = inputs["strategy"]
    if inputs["mixed_precision"] is not None:
        upd["runtime.mixed_precision_dtype"] = inputs["mixed_precision"]
        upd["task.train_data.dtype"] = inputs["mixed_precision"]
        upd["task.validation_data.dtype"] = inputs["mixed_precision"]
    aug = inputs["augment"]
    if aug is not None:
        lo, hi = aug["scale"] or (1.0, 1.0)
        upd["task.train_data.parser"] = {"aug_rand_hflip": aug["flip"], "aug_rand_vflip": aug["vflip"],
                                         "aug_scale_min": lo, "aug_scale_max": hi}
    src = _display_template(inputs["template"])
    garden.apply_overrides(cfg, upd, source=f"{src} (generated values)", experiment=name)
    # --set overrides (last)
    if inputs["overrides"]:
        sets = {}
        for key, raw, _create in inputs["overrides"]:
            data, _ = garden.parse_yaml_text(f"v: {raw}" if raw.strip() else "v: ''", f"--set {key}")
            sets[key] = data.get("v")
        garden.apply_overrides(cfg, sets, source="--set", experiment=name)
    garden.validate(cfg, inputs["out"])
    extra.append("validation: COCO box + mask metrics from the validation records (annotation_file ''; Model Garden "
                 "caches them as MODEL_DIR/annotation.json: delete it if the validation records change)")
    header = _header(inputs, plan, command, f"Model Garden {name}", extra)
    tmpl_lines = [l for l in garden.read_header_comments(inputs["template"]) if not garden.HEADER_RE.match("# " + l)]
    if tmpl_lines:
        header += ["", "Template:"] + ["  " + l if l else "" for l in tmpl_lines]
    path = garden.dump_experiment(cfg, inputs["out"], name, header=header)
    garden.load_experiment(path)  # the file we wrote must load back (strict)
    return path


__all__ = [
    "generate_config",
    "find_template",
    "template_paths",
    "template_kind",
    "parse_augment",
    "parse_override",
    "find_report",
    "GARDEN_CHECKPOINT_MODULES",
    "TFOD_CHECKPOINT_TYPES",
    "TEMPLATE_DIR",
]
