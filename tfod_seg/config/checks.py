"""Cross-field checks of a generated (or hand-edited) Mask R-CNN config, in one place.

`check_config(path, label_map=None, report=None, strategy=None)` reads a TFOD2
``pipeline.config`` or a tfod-seg Model Garden experiment YAML (local or a URL) and returns a
list of `Problem`s, each naming the file, the field and what is wrong:

* num_classes against the label map (TFOD2: label-map size; Model Garden: size + 1);
* input globs match existing record files (train and validation; ``gs://``/``ram://`` globs
  through `tfod_seg.io`);
* masks: Mask R-CNN on (TFOD2 ``number_of_stages: 3``, ``predict_instance_masks``, a supported
  feature extractor, the mask head's ``conv_hyperparams`` and its size/depth/loss weight,
  ``load_instance_masks`` and ``mask_type`` on BOTH readers, ``coco_mask_metrics`` +
  ``eval_instance_masks``; Model Garden ``include_mask``) and ``mask_type`` consistent with the
  records' ``report.json`` (found automatically beside the train records);
* the checkpoint exists (the ``.index`` file or a directory with a checkpoint);
* warm-up shorter than training, and the schedule's own length equal to the training length;
* batch size against the training set size (from the report);
* the input size is a multiple of the largest feature stride;
* target hardware: the TPU-only fields / precision against the strategy the train command
  will use (``strategy``; TFOD2 default ``auto`` = not a TPU; Model Garden default: the
  config's ``runtime.distribution_strategy``).

A label map given explicitly wins over the one the config points to. Errors are problems that
make training wrong or fail; warnings are worth a look (``severity``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, List, Optional, Sequence

from tfod_seg import io
from tfod_seg.config import garden
from tfod_seg.config.families import TFOD_MASK_HEAD, TFOD_MASK_MODEL
from tfod_seg.config.targets import check_garden_target, check_tfod_target
from tfod_seg.config.templates import template_kind
from tfod_seg.config.tfod_pipeline import (FR, MASK_PREDICTOR, TFOD_MASK_TYPES, extractor_family,
                                           input_reader_paths, tfod_image_size)
from tfod_seg.errors import ConfigError, UserError
from tfod_seg.labelmap import LabelMap, read_label_map
from tfod_seg.pbtxt import Message, PbtxtDocument, validate_with_schema
from tfod_seg.records.metadata import find_report, read_report

PLACEHOLDERS = ("PATH_TO_BE_CONFIGURED", "TRAIN_RECORDS", "VAL_RECORDS")
# TFOD2's proto defaults for the mask head, where they differ from its Mask R-CNN configs' values.
MASK_DEFAULTS = {"mask_height": 15, "mask_width": 15, "mask_prediction_num_conv_layers": 2,
                 "mask_prediction_conv_depth": 256}


@dataclasses.dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str
    severity: str = "error"  # or "warning"
    line: Optional[int] = None

    def __str__(self) -> str:
        at = f"{self.file}:{self.line}" if self.line else self.file
        return f"{at}: {self.severity}: {self.field}: {self.message}"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


Add = Callable[..., None]


def _glob_problems(file: str, field: str, patterns: Sequence[str], line=None) -> List[Problem]:
    if not patterns:
        return [Problem(file, field, "no input path set", line=line)]
    out = []
    for pat in patterns:
        if not pat or any(p in pat for p in PLACEHOLDERS):
            out.append(Problem(file, field, f"placeholder {pat!r} not filled; give the record glob "
                                             "(tfod-seg config --train/--val)", line=line))
            continue
        for piece in pat.split(","):
            out.extend(_glob_piece(file, field, piece, line))
    return out


def _glob_piece(file: str, field: str, piece: str, line) -> List[Problem]:
    if not piece:
        return []
    try:
        found = [m for m in io.glob(io.abspath(piece)) if io.isfile(m)]
    except UserError as e:
        return [Problem(file, field, f"{piece!r} cannot be listed: {e}", "warning", line)]
    if found:
        return []
    return [Problem(file, field, f"{piece!r} matches no file (expected TFRecord shards, e.g. 'out/train-*.tfrecord')",
                    line=line)]


def _checkpoint_problems(file: str, field: str, ckpt: Optional[str], line=None) -> List[Problem]:
    if not ckpt:
        return []
    if "PATH_TO_BE_CONFIGURED" in ckpt:
        return [Problem(file, field, f"placeholder {ckpt!r}: give --checkpoint, or remove the field to train "
                                     "from scratch", line=line)]
    try:
        if io.isdir(ckpt):
            if io.exists(io.join(ckpt, "checkpoint")) or io.glob(io.join(ckpt, "*.index")):
                return []
            return [Problem(file, field, f"directory {ckpt!r} holds no TF checkpoint (no 'checkpoint' or *.index "
                                         "file)", line=line)]
        if io.exists(ckpt + ".index") or io.isfile(ckpt):
            return []
    except UserError as e:
        return [Problem(file, field, f"{ckpt!r} cannot be checked here: {e}", "warning", line)]
    return [Problem(file, field, f"checkpoint {ckpt!r} not found (expected {ckpt}.index and its data files)", line=line)]


def _load_report(report, train_globs, problems, file) -> Optional[dict]:
    if isinstance(report, dict):
        return report
    try:
        path = report or find_report([g for g in train_globs if g])
        return read_report(path)
    except UserError as e:
        problems.append(Problem(file, "report", str(e), "warning"))
        return None


def _load_label_map(label_map, fallback_path, problems, file, field, line=None):
    if isinstance(label_map, LabelMap):
        return label_map
    path = label_map or fallback_path
    if not path:
        return None
    if "PATH_TO_BE_CONFIGURED" in path:
        problems.append(Problem(file, field, f"placeholder {path!r}: give --label-map", line=line))
        return None
    try:
        return read_label_map(path, allow_gaps=True)
    except UserError as e:
        problems.append(Problem(file, field, str(e), "warning" if io.is_url(path) else "error", line))
        return None


def check_config(path, label_map=None, report=None, strategy: Optional[str] = None) -> List[Problem]:
    """All problems found in the config at ``path`` (TFOD2 ``.config`` or Model Garden ``.yaml``).

    ``label_map``: a path or `LabelMap` (default: the one the config names); ``report``: the
    records' ``report.json`` path or its dict (default: found beside the train records);
    ``strategy``: the one `tfod-seg train` will use (see the module docstring).
    A file that cannot be parsed at all raises ConfigError.
    """
    path = os.fspath(path)
    if not io.isfile(path):
        raise ConfigError(f"{path}: config file not found")
    if template_kind(path) == "tfod":
        return _check_tfod(path, label_map, report, strategy)
    return _check_garden(path, label_map, report, strategy)


# -- TFOD2 ----------------------------------------------------------------------------------
def _check_tfod(path, label_map, report, strategy) -> List[Problem]:
    doc = PbtxtDocument.load(path)
    validate_with_schema(path, text=doc.dump())  # raises with file:line:col when TFOD2 is importable
    P: List[Problem] = []

    def add(field, message, severity="error"):
        P.append(Problem(path, field, message, severity, doc.line_of(field)))

    if not isinstance(doc.get(FR, None), Message):
        add("model", "not a Faster/Mask R-CNN config (no model.faster_rcnn block)")
        return P
    _check_tfod_model(doc, add)
    rep = _load_report(report, doc.get_all("train_input_reader.tf_record_input_reader.input_path"), P, path)
    lm_paths = _check_tfod_readers(doc, rep, add, P, path)
    _check_tfod_eval(doc, add)
    lm = _load_label_map(label_map, sorted(lm_paths)[0] if lm_paths else None, P, path,
                         "train_input_reader.label_map_path", doc.line_of("train_input_reader.label_map_path"))
    n = doc.get(f"{FR}.num_classes", None)
    if lm is not None and n != lm.max_id:
        add(f"{FR}.num_classes", f"is {n} but the label map {lm.path or ''} has {len(lm)} classes "
                                 f"(ids up to {lm.max_id}): expected {lm.max_id}")
    _check_tfod_train(doc, rep, add, P, path)
    for field, message in check_tfod_target(doc, strategy):
        add(field, message, "warning")
    return P


def _check_tfod_model(doc, add: Add) -> None:
    try:
        extractor_family(doc)
    except ConfigError as e:
        add(f"{FR}.feature_extractor.type", str(e).split(": ", 2)[-1])
    if doc.get(f"{FR}.number_of_stages", 2) != 3:
        add(f"{FR}.number_of_stages", f"is {doc.get(f'{FR}.number_of_stages', 2)} (default 2); Mask R-CNN needs 3 "
                                      "or the mask head is never run")
    if not isinstance(doc.get(MASK_PREDICTOR, None), Message):
        add(f"{FR}.second_stage_box_predictor", "has no mask_rcnn_box_predictor")
        return
    if doc.get(f"{MASK_PREDICTOR}.predict_instance_masks", False) is not True:
        add(f"{MASK_PREDICTOR}.predict_instance_masks", "is not true: the model would train without masks")
    if not doc.has(f"{MASK_PREDICTOR}.conv_hyperparams"):
        add(f"{MASK_PREDICTOR}.conv_hyperparams", "missing: the mask head needs conv_hyperparams")
    for key, default in MASK_DEFAULTS.items():
        if not doc.has(f"{MASK_PREDICTOR}.{key}"):
            add(f"{MASK_PREDICTOR}.{key}", f"not set: TFOD2's default {default} applies; its Mask R-CNN configs use "
                                           f"{TFOD_MASK_HEAD[key]} (tfod-seg config adds it)", "warning")
    key = "second_stage_mask_prediction_loss_weight"
    if not doc.has(f"{FR}.{key}"):
        add(f"{FR}.{key}", f"not set: TFOD2's default 1.0 applies; its Mask R-CNN configs use {TFOD_MASK_MODEL[key]}",
            "warning")
    size = tfod_image_size(doc)
    if size and doc.get(f"{FR}.feature_extractor.type", "").endswith("fpn_keras"):
        top = doc.get(f"{FR}.feature_extractor.fpn.max_level", 6)
        if size % (2 ** top):
            add(f"{FR}.image_resizer", f"input size {size} is not a multiple of 2**max_level = {2 ** top}")


def _check_tfod_readers(doc, rep, add: Add, P: List[Problem], path: str) -> set:
    readers = input_reader_paths(doc)
    if "train_input_reader" not in readers:
        add("train_input_reader", "missing")
    if not any(r.startswith("eval_input_reader") for r in readers):
        add("eval_input_reader", "missing")
    rep_mask = TFOD_MASK_TYPES.get(rep.get("mask_type")) if rep else None
    lm_paths = set()
    for r in readers:
        if doc.get(f"{r}.load_instance_masks", False) is not True:
            add(f"{r}.load_instance_masks", "is not true: masks are not read from the records (set it on BOTH readers)")
        mt = doc.get(f"{r}.mask_type", None)
        if mt is None:
            add(f"{r}.mask_type", "not set (defaults to NUMERICAL_MASKS); tfod-seg records use PNG_MASKS unless "
                                  "converted with --mask-type numerical")
        elif rep_mask and str(mt) != rep_mask:
            add(f"{r}.mask_type", f"is {mt} but the records were written with {rep.get('mask_type')!r} masks "
                                  f"(report.json): expected {rep_mask}")
        lmp = doc.get(f"{r}.label_map_path", None)
        if not lmp:
            add(f"{r}.label_map_path", "not set")
        else:
            lm_paths.add(lmp)
        field = f"{r}.tf_record_input_reader.input_path"
        P.extend(_glob_problems(path, field, doc.get_all(field), doc.line_of(field)))
    if len(lm_paths) > 1:
        add("eval_input_reader.label_map_path", f"the readers use different label maps: {sorted(lm_paths)}")
    return lm_paths


def _check_tfod_eval(doc, add: Add) -> None:
    metrics = [str(m) for m in doc.get_all("eval_config.metrics_set")]
    if "coco_mask_metrics" not in metrics:
        add("eval_config.metrics_set", f"{metrics} lacks 'coco_mask_metrics': masks would not be evaluated")
    if "coco_detection_metrics" not in metrics:
        add("eval_config.metrics_set", f"{metrics} lacks 'coco_detection_metrics'", "warning")
    if doc.get("eval_config.eval_instance_masks", False) is not True:
        add("eval_config.eval_instance_masks", "is not true: mask metrics need it")


def _check_tfod_train(doc, rep, add: Add, P: List[Problem], path: str) -> None:
    ck = doc.get("train_config.fine_tune_checkpoint", None)
    P.extend(_checkpoint_problems(path, "train_config.fine_tune_checkpoint", ck,
                                  doc.line_of("train_config.fine_tune_checkpoint")))
    if ck and doc.get("train_config.fine_tune_checkpoint_type", None) is None:
        add("train_config.fine_tune_checkpoint_type", "not set: TFOD2 then restores a detection checkpoint as "
                                                      "'classification' (feature extractor only)", "warning")
    _check_tfod_schedule(doc, doc.get("train_config.num_steps", None), add)
    _check_batch(rep, doc.get("train_config.batch_size", None), "train_config.batch_size", add)


def _check_tfod_schedule(doc, steps, add: Add) -> None:
    opt = doc.get("train_config.optimizer", None)
    if not isinstance(opt, Message):
        return
    for f in opt.fields:
        base = f"train_config.optimizer.{f.name}.learning_rate.cosine_decay_learning_rate"
        if not f.name.endswith("_optimizer") or not doc.has(base):
            continue
        total = doc.get(f"{base}.total_steps", None)
        warm = doc.get(f"{base}.warmup_steps", 0)
        if steps and total is not None and total != steps:
            add(f"{base}.total_steps", f"is {total} but train_config.num_steps is {steps}: the schedule "
                                       f"{'ends early and trains at zero LR' if total < steps else 'never decays fully'}",
                "error" if total < steps else "warning")
        if total is not None and warm >= total:
            add(f"{base}.warmup_steps", f"{warm} is not smaller than total_steps {total}")
        if steps and warm >= steps:
            add(f"{base}.warmup_steps", f"{warm} is not smaller than num_steps {steps}")


def _check_batch(rep, bs, field, add: Add) -> None:
    if not rep or not bs:
        return
    try:
        n = int(rep["splits"]["train"]["images"])
    except (KeyError, TypeError, ValueError):
        return
    if n and bs > n:
        add(field, f"{bs} is larger than the training set ({n} images in report.json)")
    elif n and bs > n / 4:
        add(field, f"{bs} is more than a quarter of the training set ({n} images): few distinct batches per epoch",
            "warning")


# -- Model Garden ---------------------------------------------------------------------------
def _check_garden(path, label_map, report, strategy) -> List[Problem]:
    name, cfg = garden.load_experiment(path)  # strict: unknown keys etc. raise ConfigError
    _, lines = garden.parse_yaml_text(io.read_text(path, ConfigError, "experiment file"), path)
    P: List[Problem] = []

    def add(field, message, severity="error"):
        P.append(Problem(path, field, message, severity, lines.get(field)))

    t = cfg.task
    semantic = type(t).__name__ == "SemanticSegmentationTask"  # a scene model (garden_deeplab*)
    if not semantic and not getattr(t.model, "include_mask", False):
        add("task.model.include_mask", "is false: the model would train without masks")
    train_globs = _as_list(t.train_data.input_path)
    for field, globs in (("task.train_data.input_path", train_globs),
                         ("task.validation_data.input_path", _as_list(t.validation_data.input_path))):
        P.extend(_glob_problems(path, field, globs, lines.get(field)))
    rep = _load_report(report, [p for g in train_globs for p in g.split(",")], P, path)
    if semantic and rep and rep.get("task") != "semantic":
        add("task.train_data.input_path", "records are instance records (report.json); a scene model reads "
                                          "`tfod-seg convert --task semantic` records")
    if not semantic and rep and rep.get("mask_type") not in (None, "png"):
        add("task.train_data.input_path", f"records were written with {rep.get('mask_type')!r} masks (report.json); "
                                          "Model Garden's decoder reads PNG masks only: convert with --mask-type png")
    _check_garden_classes(t.model, label_map, rep, P, path, add)
    P.extend(_checkpoint_problems(path, "task.init_checkpoint", t.init_checkpoint, lines.get("task.init_checkpoint")))
    _check_garden_schedule(cfg.trainer, add)
    _check_batch(rep, t.train_data.global_batch_size, "task.train_data.global_batch_size", add)
    size = list(t.model.input_size or [])
    if size and size[0] and size[0] % (2 ** t.model.max_level):
        add("task.model.input_size", f"{size[0]} is not a multiple of 2**max_level = {2 ** t.model.max_level}")
    if not semantic:
        _check_garden_detection(cfg, strategy, add)
    return P


def _check_garden_detection(cfg, strategy, add: Add) -> None:
    """Mask R-CNN only: COCO evaluation set-up, sampler sizes, target hardware."""
    t = cfg.task
    if t.annotation_file and not io.is_url(t.annotation_file) and not io.isfile(t.annotation_file):
        add("task.annotation_file", f"{t.annotation_file!r} not found; leave it '' to compute COCO metrics from the "
                                    "validation records")
    if not t.use_coco_metrics:
        add("task.use_coco_metrics", "is false: validation reports no COCO box/mask AP", "warning")
    _check_garden_sampling(t, add)
    dtypes = [("task.train_data.dtype", t.train_data.dtype), ("task.validation_data.dtype", t.validation_data.dtype)]
    for field, message in check_garden_target(strategy or cfg.runtime.distribution_strategy,
                                              cfg.runtime.mixed_precision_dtype or "float32",
                                              cfg.trainer.steps_per_loop, cfg.trainer.train_steps, dtypes):
        add(field, message, "warning")


def _check_garden_classes(m, label_map, rep, P, path, add: Add) -> None:
    lm = _load_label_map(label_map, None, P, path, "task.model.num_classes")
    if lm is None and rep and rep.get("label_map"):
        lm = _load_label_map(rep["label_map"], None, P, path, "task.model.num_classes")
    if lm is not None and m.num_classes != lm.max_id + 1:
        add("task.model.num_classes", f"is {m.num_classes} but the label map {lm.path or ''} has {len(lm)} classes: "
                                      f"expected {lm.max_id + 1} (Model Garden counts the background)")


def _check_garden_schedule(tr, add: Add) -> None:
    steps = tr.train_steps
    oc = tr.optimizer_config
    if oc.warmup.type is not None and oc.warmup.get() is not None:
        w = getattr(oc.warmup.get(), "warmup_steps", 0) or 0
        if steps and w >= steps:
            add(f"trainer.optimizer_config.warmup.{oc.warmup.type}.warmup_steps",
                f"{w} is not smaller than trainer.train_steps {steps}")
    lr = oc.learning_rate.get()
    if oc.learning_rate.type == "stepwise" and lr is not None and steps:
        late = [b for b in lr.boundaries if b >= steps]
        if late:
            add("trainer.optimizer_config.learning_rate.stepwise.boundaries",
                f"{late} at or beyond train_steps {steps}: those decays never happen", "warning")
    elif lr is not None and hasattr(lr, "decay_steps") and steps and lr.decay_steps < steps:
        add(f"trainer.optimizer_config.learning_rate.{oc.learning_rate.type}.decay_steps",
            f"{lr.decay_steps} is shorter than train_steps {steps}", "warning")
    if tr.summary_interval % max(1, tr.steps_per_loop):
        add("trainer.summary_interval", f"{tr.summary_interval} must be a multiple of steps_per_loop {tr.steps_per_loop}")


def _check_garden_sampling(t, add: Add) -> None:
    """The samplers pick top-k from what the stage before them produced: more than that fails
    at the first training step (TopKV2: input must have last dimension >= k)."""
    m = t.model
    pool = m.roi_generator.num_proposals + (t.train_data.parser.max_num_instances if m.roi_sampler.mix_gt_boxes else 0)
    if m.roi_sampler.num_sampled_rois > pool:
        add("task.model.roi_sampler.num_sampled_rois",
            f"{m.roi_sampler.num_sampled_rois} is more than the {pool} boxes it samples from (roi_generator."
            "num_proposals + parser.max_num_instances): training fails at the first step")
    if m.include_mask and m.mask_sampler and m.mask_sampler.num_sampled_masks > m.roi_sampler.num_sampled_rois:
        add("task.model.mask_sampler.num_sampled_masks",
            f"{m.mask_sampler.num_sampled_masks} is more than roi_sampler.num_sampled_rois "
            f"{m.roi_sampler.num_sampled_rois}: training fails at the first step")


def _as_list(v) -> List[str]:
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [v]
    try:
        return [str(x) for x in v]
    except TypeError:
        return [str(v)]


def format_problems(problems: Sequence[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


__all__ = ["Problem", "check_config", "format_problems"]
