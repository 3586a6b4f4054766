"""Cross-field checks of a generated (or hand-edited) Mask R-CNN config, in one place.

`check_config(path, label_map=None, report=None)` reads a TFOD2 ``pipeline.config`` or a
tfod-seg Model Garden experiment YAML and returns a list of `Problem`s, each naming the file, the
field and what is wrong:

* num_classes against the label map (TFOD2: label-map size; Model Garden: size + 1);
* input globs match existing record files (train and validation);
* masks: Mask R-CNN on (TFOD2 ``number_of_stages: 3``, ``predict_instance_masks``, ``load_instance_masks``
  and ``mask_type`` on BOTH readers, ``coco_mask_metrics`` + ``eval_instance_masks``; Model Garden
  ``include_mask``) and ``mask_type`` consistent with the records' ``report.json`` (written by
  `tfod-seg convert` next to the records: found automatically beside the train records);
* the checkpoint exists (local paths: the ``.index`` file or a directory with a checkpoint);
* warm-up shorter than training, and the schedule's own length equal to the training length;
* batch size against the training set size (from the report);
* the input size is a multiple of the largest feature stride (Model Garden ``2**max_level``).

A label map given explicitly wins over the one the config points to. Errors are problems that
make training wrong or fail; warnings are worth a look (``severity``).
"""

from __future__ import annotations

import dataclasses
import glob
import os
from typing import List, Optional, Sequence

from tfod_seg.errors import ConfigError, UserError


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


def _is_remote(p: str) -> bool:
    return "://" in p


def _glob_problems(file: str, field: str, patterns: Sequence[str], line=None) -> List[Problem]:
    out = []
    if not patterns:
        return [Problem(file, field, "no input path set", line=line)]
    for pat in patterns:
        if not pat or "PATH_TO_BE_CONFIGURED" in pat or pat in ("TRAIN_RECORDS", "VAL_RECORDS"):
            out.append(Problem(file, field, f"placeholder {pat!r} not filled; give the record glob "
                                             "(tfod-seg config --train/--val)", line=line))
            continue
        if _is_remote(pat):
            continue
        for piece in pat.split(","):
            if piece and not [m for m in glob.glob(os.path.expanduser(piece)) if os.path.isfile(m)]:
                out.append(Problem(file, field, f"{piece!r} matches no file (expected TFRecord shards, e.g. "
                                                "'out/train-*.tfrecord')", line=line))
    return out


def _checkpoint_problems(file: str, field: str, ckpt: Optional[str], line=None) -> List[Problem]:
    if not ckpt:
        return []
    if "PATH_TO_BE_CONFIGURED" in ckpt:
        return [Problem(file, field, f"placeholder {ckpt!r}: give --checkpoint, or remove the field to train "
                                     "from scratch", line=line)]
    if _is_remote(ckpt):
        return [Problem(file, field, f"{ckpt!r} is remote and cannot be checked here (no network at run time?)",
                        "warning", line)]
    if os.path.isdir(ckpt):
        if os.path.exists(os.path.join(ckpt, "checkpoint")) or glob.glob(os.path.join(ckpt, "*.index")):
            return []
        return [Problem(file, field, f"directory {ckpt!r} holds no TF checkpoint (no 'checkpoint' or *.index file)", line=line)]
    if os.path.exists(ckpt + ".index") or os.path.isfile(ckpt):
        return []
    return [Problem(file, field, f"checkpoint {ckpt!r} not found (expected {ckpt}.index and its data files)", line=line)]


def _find_report(train_globs: Sequence[str]) -> Optional[str]:
    from tfod_seg.config.generate import find_report

    return find_report([g for g in train_globs if g])


def _load_report(report, train_globs, problems, file) -> Optional[dict]:
    if isinstance(report, dict):
        return report
    path = report or _find_report(train_globs)
    if not path:
        return None
    from tfod_seg.config.generate import read_report

    try:
        return read_report(path)
    except UserError as e:
        problems.append(Problem(file, "report", str(e), "warning"))
        return None


def _load_label_map(label_map, fallback_path, problems, file, field, line=None):
    from tfod_seg.labelmap import LabelMap, read_label_map

    if isinstance(label_map, LabelMap):
        return label_map
    path = label_map or fallback_path
    if not path:
        return None
    if "PATH_TO_BE_CONFIGURED" in path:
        problems.append(Problem(file, field, f"placeholder {path!r}: give --label-map", line=line))
        return None
    if _is_remote(path):
        return None
    try:
        return read_label_map(path, allow_gaps=True)
    except UserError as e:
        problems.append(Problem(file, field, str(e), line=line))
        return None


def check_config(path, label_map=None, report=None) -> List[Problem]:
    """All problems found in the config at ``path`` (TFOD2 ``.config`` or Model Garden ``.yaml``).

    ``label_map``: a path or `LabelMap` (default: the one the config names); ``report``: the
    records' ``report.json`` path or its dict (default: found beside the train records).
    A file that cannot be parsed at all raises ConfigError.
    """
    from tfod_seg.config.generate import template_kind

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: config file not found")
    if template_kind(path) == "tfod":
        return _check_tfod(path, label_map, report)
    return _check_garden(path, label_map, report)


# -- TFOD2 ----------------------------------------------------------------------------------
def _check_tfod(path, label_map, report) -> List[Problem]:
    from tfod_seg.config.generate import TFOD_MASK_TYPES, input_reader_paths, tfod_image_size
    from tfod_seg.pbtxt import Message, PbtxtDocument, validate_with_schema

    doc = PbtxtDocument.load(path)
    validate_with_schema(path, text=doc.dump())  # raises with file:line:col when TFOD2 is importable
    P: List[Problem] = []

    def add(field, message, severity="error"):
        P.append(Problem(path, field, message, severity, doc.line_of(field)))

    fr = "model.faster_rcnn"
    if not isinstance(doc.get(fr, None), Message):
        add("model", "not a Faster/Mask R-CNN config (no model.faster_rcnn block)")
        return P
    if doc.get(f"{fr}.number_of_stages", 2) != 3:
        add(f"{fr}.number_of_stages", f"is {doc.get(f'{fr}.number_of_stages', 2)} (default 2); Mask R-CNN needs 3 "
                                      "or the mask head is never run")
    mp = f"{fr}.second_stage_box_predictor.mask_rcnn_box_predictor"
    if not isinstance(doc.get(mp, None), Message):
        add(f"{fr}.second_stage_box_predictor", "has no mask_rcnn_box_predictor")
    else:
        if doc.get(f"{mp}.predict_instance_masks", False) is not True:
            add(f"{mp}.predict_instance_masks", "is not true: the model would train without masks")
        if not doc.has(f"{mp}.conv_hyperparams"):
            add(f"{mp}.conv_hyperparams", "missing: the mask head needs conv_hyperparams")
    readers = input_reader_paths(doc)
    if "train_input_reader" not in readers:
        add("train_input_reader", "missing")
    if not any(r.startswith("eval_input_reader") for r in readers):
        add("eval_input_reader", "missing")
    rep = _load_report(report, doc.get_all("train_input_reader.tf_record_input_reader.input_path"), P, path)
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
        P.extend(_glob_problems(path, f"{r}.tf_record_input_reader.input_path",
                                doc.get_all(f"{r}.tf_record_input_reader.input_path"),
                                doc.line_of(f"{r}.tf_record_input_reader.input_path")))
    if len(lm_paths) > 1:
        add("eval_input_reader.label_map_path", f"the readers use different label maps: {sorted(lm_paths)}")
    metrics = [str(m) for m in doc.get_all("eval_config.metrics_set")]
    if "coco_mask_metrics" not in metrics:
        add("eval_config.metrics_set", f"{metrics} lacks 'coco_mask_metrics': masks would not be evaluated")
    if "coco_detection_metrics" not in metrics:
        add("eval_config.metrics_set", f"{metrics} lacks 'coco_detection_metrics'", "warning")
    if doc.get("eval_config.eval_instance_masks", False) is not True:
        add("eval_config.eval_instance_masks", "is not true: mask metrics need it")
    # classes
    lm = _load_label_map(label_map, sorted(lm_paths)[0] if lm_paths else None, P, path,
                         "train_input_reader.label_map_path", doc.line_of("train_input_reader.label_map_path"))
    n = doc.get(f"{fr}.num_classes", None)
    if lm is not None and n != lm.max_id:
        add(f"{fr}.num_classes", f"is {n} but the label map {lm.path or ''} has {len(lm)} classes "
                                 f"(ids up to {lm.max_id}): expected {lm.max_id}")
    # checkpoint
    ck = doc.get("train_config.fine_tune_checkpoint", None)
    P.extend(_checkpoint_problems(path, "train_config.fine_tune_checkpoint", ck,
                                  doc.line_of("train_config.fine_tune_checkpoint")))
    if ck and doc.get("train_config.fine_tune_checkpoint_type", None) is None:
        add("train_config.fine_tune_checkpoint_type", "not set: TFOD2 then restores a detection checkpoint as "
                                                      "'classification' (feature extractor only)", "warning")
    # schedule
    steps = doc.get("train_config.num_steps", None)
    _check_tfod_schedule(doc, steps, add)
    # batch size vs data
    bs = doc.get("train_config.batch_size", None)
    _check_batch(rep, bs, "train_config.batch_size", add)
    size = tfod_image_size(doc)
    if size and doc.get(f"{fr}.feature_extractor.type", "").endswith("fpn_keras"):
        top = doc.get(f"{fr}.feature_extractor.fpn.max_level", 6)
        if size % (2 ** top):
            add(f"{fr}.image_resizer", f"input size {size} is not a multiple of 2**max_level = {2 ** top}")
    return P


def _check_tfod_schedule(doc, steps, add) -> None:
    from tfod_seg.pbtxt import Message

    opt = doc.get("train_config.optimizer", None)
    if not isinstance(opt, Message):
        return
    for f in opt.fields:
        if not f.name.endswith("_optimizer"):
            continue
        base = f"train_config.optimizer.{f.name}.learning_rate.cosine_decay_learning_rate"
        if doc.has(base):
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


def _check_batch(rep, bs, field, add) -> None:
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
def _check_garden(path, label_map, report) -> List[Problem]:
    from tfod_seg.config import garden

    name, cfg = garden.load_experiment(path)  # strict: unknown keys etc. raise ConfigError
    _, lines = garden.parse_yaml_text(open(path, encoding="utf-8").read(), path)
    P: List[Problem] = []

    def add(field, message, severity="error"):
        P.append(Problem(path, field, message, severity, lines.get(field)))

    t = cfg.task
    m = t.model
    if not getattr(m, "include_mask", False):
        add("task.model.include_mask", "is false: the model would train without masks")
    train_globs = _as_list(t.train_data.input_path)
    val_globs = _as_list(t.validation_data.input_path)
    P.extend(_glob_problems(path, "task.train_data.input_path", train_globs, lines.get("task.train_data.input_path")))
    P.extend(_glob_problems(path, "task.validation_data.input_path", val_globs,
                            lines.get("task.validation_data.input_path")))
    rep = _load_report(report, [p for g in train_globs for p in g.split(",")], P, path)
    if rep and rep.get("mask_type") not in (None, "png"):
        add("task.train_data.input_path", f"records were written with {rep.get('mask_type')!r} masks (report.json); "
                                          "Model Garden's decoder reads PNG masks only: convert with --mask-type png")
    lm = _load_label_map(label_map, None, P, path, "task.model.num_classes")
    if lm is None and rep and rep.get("label_map"):
        lm = _load_label_map(rep["label_map"], None, P, path, "task.model.num_classes")
    if lm is not None and m.num_classes != lm.max_id + 1:
        add("task.model.num_classes", f"is {m.num_classes} but the label map {lm.path or ''} has {len(lm)} classes: "
                                      f"expected {lm.max_id + 1} (Model Garden counts the background)")
    P.extend(_checkpoint_problems(path, "task.init_checkpoint", t.init_checkpoint, lines.get("task.init_checkpoint")))
    if t.annotation_file and not _is_remote(t.annotation_file) and not os.path.isfile(t.annotation_file):
        add("task.annotation_file", f"{t.annotation_file!r} not found; leave it '' to compute COCO metrics from the "
                                    "validation records")
    if not t.use_coco_metrics:
        add("task.use_coco_metrics", "is false: validation reports no COCO box/mask AP", "warning")
    # schedule
    tr = cfg.trainer
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
    _check_batch(rep, t.train_data.global_batch_size, "task.train_data.global_batch_size", add)
    size = list(m.input_size or [])
    if size and size[0] % (2 ** m.max_level):
        add("task.model.input_size", f"{size[0]} is not a multiple of 2**max_level = {2 ** m.max_level}")
    return P


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
