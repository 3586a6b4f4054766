"""`tfod-seg config --migrate`: a TFOD2 Faster/Mask R-CNN ``pipeline.config`` → a Model Garden
Mask R-CNN experiment YAML (``maskrcnn_resnetfpn_coco`` with overrides).

What maps (TFOD2 field → Model Garden key):

=========================================================  ==============================================
TFOD2                                                      Model Garden
=========================================================  ==============================================
``feature_extractor.type`` (ResNet-50/101/152 v1)          ``backbone.resnet.model_id`` 50/101/152
``feature_extractor.type`` ``*_fpn_keras`` + ``fpn`` levels ``decoder.type: fpn``, ``min_level``/``max_level``
non-FPN (single stride-16 feature map)                     ``decoder.type: identity``, levels 4..4
Inception-ResNet-v2                                        none: nearest ResNet-152 (said in the header)
``image_resizer`` fixed / keep-aspect (max dimension)      ``input_size`` (rounded up to 2**max_level)
label map (``num_classes``)                                ``num_classes`` = label-map size + 1
anchors (``multiscale``: anchor_scale, scales_per_octave,  ``anchor.anchor_size``, ``num_scales``,
aspect_ratios; ``grid``: aspect_ratios)                    ``aspect_ratios``
``first_stage_*`` NMS, proposals, minibatch, loss weights  ``roi_generator``, parser ``rpn_*``, ``losses``
``initial_crop_size`` / ``maxpool_stride``                 ``roi_aligner.crop_size``
``second_stage_batch_size``, ``balance_fraction``          ``roi_sampler``
``second_stage_post_processing`` NMS, score converter      ``detection_generator``
loss weights (box, class, mask)                            ``losses.*_weight``
mask head (convs, depth, class-agnostic)                   ``mask_head``
``train_config.batch_size``, ``num_steps``                 ``global_batch_size``, ``trainer.train_steps``
optimizer (momentum/adam/rms_prop), clipping               ``optimizer_config.optimizer``
learning rate (cosine, manual steps, exponential,          ``optimizer_config.learning_rate`` + ``warmup``
constant) with warm-up
augmentation (h/v flip, scale crop)                        parser ``aug_rand_hflip/vflip``, ``aug_scale_*``
``max_number_of_boxes``                                    parser ``max_num_instances``
reader ``input_path``, eval ``batch_size``, metrics         ``train_data``/``validation_data``, COCO metrics
``use_bfloat16`` / ``--target``                            ``runtime.mixed_precision_dtype``, loop sizes
=========================================================  ==============================================

Every other field of the pipeline.config (and every approximation) is listed by name in the
output's header and returned in `MigrationResult`, which the CLI prints.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

from tfod_seg import io
from tfod_seg.config import garden
from tfod_seg.config.families import family_of
from tfod_seg.config.garden_generate import garden_intervals
from tfod_seg.config.targets import garden_target_values, resolve_target
from tfod_seg.config.templates import check_output_kind
from tfod_seg.config.tfod_pipeline import FR, MASK_PREDICTOR, RESIZER
from tfod_seg.errors import ConfigError, UserError
from tfod_seg.labelmap import read_label_map
from tfod_seg.pbtxt import Message, PbtxtDocument
from tfod_seg.records.metadata import find_report, read_report

EXPERIMENT = "maskrcnn_resnetfpn_coco"
NEAREST_BACKBONE = {"inception_resnet_v2": 152}
# TFOD2's proto defaults for the fields mapped below: a field the config leaves out migrates as the
# value TFOD2 would have used, not Model Garden's (e.g. 64 sampled RoIs, not 512).
TFOD_DEFAULTS = {
    "first_stage_minibatch_size": 256, "first_stage_positive_balance_fraction": 0.5,
    "first_stage_nms_score_threshold": 0.0, "first_stage_nms_iou_threshold": 0.7, "first_stage_max_proposals": 300,
    "first_stage_localization_loss_weight": 1.0, "first_stage_objectness_loss_weight": 1.0,
    "second_stage_batch_size": 64, "second_stage_balance_fraction": 0.25,
    "second_stage_localization_loss_weight": 1.0, "second_stage_classification_loss_weight": 1.0,
    "second_stage_mask_prediction_loss_weight": 1.0, "mask_prediction_num_conv_layers": 2,
    "max_number_of_boxes": 100,
}
NO_EQUIVALENT_WHY = {
    "fine_tune_checkpoint": "TFOD2 checkpoints do not load into Model Garden (other variable names); "
                            "give a Model Garden checkpoint with tfod-seg config --checkpoint",
    "use_static_shapes": "Model Garden always uses static shapes",
    "use_matmul_crop_and_resize": "Model Garden picks its own crop-and-resize",
    "use_matmul_gather_in_matcher": "Model Garden picks its own matcher ops",
    "use_static_balanced_label_sampler": "Model Garden's sampler is static already",
    "mask_height": "Model Garden's masks are 2 x mask_roi_aligner.crop_size (28 px)",
    "mask_width": "Model Garden's masks are 2 x mask_roi_aligner.crop_size (28 px)",
}


@dataclasses.dataclass
class MigrationResult:
    """What `migrate_config` wrote and how each TFOD2 field was handled."""

    out: str
    source: str
    experiment: str
    mapped: List[Tuple[str, str]]        # (TFOD2 field, Model Garden key)
    approximate: List[Tuple[str, str]]   # (TFOD2 field, what was done instead)
    unmapped: List[str]                  # TFOD2 fields with no equivalent (with the reason when known)

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


class _Migration:
    """The TFOD2 document, the Model Garden updates, and the bookkeeping of every field."""

    def __init__(self, doc: PbtxtDocument):
        self.doc = doc
        self.upd: Dict[str, Any] = {}
        self.used: List[str] = []
        self.mapped: List[Tuple[str, str]] = []
        self.approximate: List[Tuple[str, str]] = []

    def get(self, path: str, default=None):
        return self.doc.get(path, default)

    def use(self, path: str) -> None:
        """Mark ``path`` (and everything below it) as handled."""
        self.used.append(path)

    def map(self, path: str, key: str, value=None, convert=None) -> bool:
        """Set ``key`` from the TFOD2 field at ``path`` when it is present, else from TFOD2's own
        default for that field (`TFOD_DEFAULTS`: what TFOD2 would have used); True when set."""
        if not self.doc.has(path):
            leaf = path.rpartition(".")[2]
            if leaf in TFOD_DEFAULTS and value is None:
                self.upd[key] = TFOD_DEFAULTS[leaf]
                self.mapped.append((f"{path} (TFOD2 default {TFOD_DEFAULTS[leaf]})", key))
                return True
            return False
        v = self.doc.get(path) if value is None else value
        self.upd[key] = convert(v) if convert else v
        self.use(path)
        self.mapped.append((path, key))
        return True

    def approx(self, path: str, note: str) -> None:
        self.use(path)
        self.approximate.append((path, note))

    def unmapped(self) -> List[str]:
        out = []
        for p in _leaf_paths(self.doc):
            if any(p == u or p.startswith(u + ".") for u in self.used):
                continue
            why = NO_EQUIVALENT_WHY.get(p.rpartition(".")[2])
            out.append(f"{p} ({why})" if why else p)
        return out


def _leaf_paths(doc) -> List[str]:
    paths = doc.paths()
    return [p for p in paths if not any(q.startswith(p + ".") for q in paths)]


# -- model ------------------------------------------------------------------------------------
def _backbone(m: _Migration) -> bool:
    """Backbone and decoder; returns whether the model has an FPN."""
    fe = f"{FR}.feature_extractor"
    fam = family_of(m.get(f"{fe}.type", ""), m.doc.source)
    depth = fam.depth or NEAREST_BACKBONE[fam.backbone]
    m.upd["task.model.backbone"] = {"type": "resnet", "resnet": {"model_id": depth}}
    if fam.depth:
        m.map(f"{fe}.type", "task.model.backbone.resnet.model_id", depth)
    else:
        m.approx(f"{fe}.type", f"{fam.name} has no Model Garden backbone; nearest: ResNet-{depth} (similar depth "
                               "and compute)")
    if fam.fpn:
        m.upd["task.model.decoder"] = {"type": "fpn"}
        m.map(f"{fe}.fpn.min_level", "task.model.min_level")
        m.map(f"{fe}.fpn.max_level", "task.model.max_level")
        m.upd.setdefault("task.model.min_level", 2)
        m.upd.setdefault("task.model.max_level", 6)
    else:
        m.upd.update({"task.model.decoder": {"type": "identity"}, "task.model.min_level": 4,
                      "task.model.max_level": 4})
        m.mapped.append((f"{fe}.type (no FPN)", "task.model.decoder.type: identity, levels 4..4 (stride 16)"))
    return fam.fpn


def _input_size(m: _Migration) -> None:
    top = m.upd["task.model.max_level"]
    fixed, keep = f"{RESIZER}.fixed_shape_resizer", f"{RESIZER}.keep_aspect_ratio_resizer"
    if m.doc.has(fixed):
        h, w = m.get(f"{fixed}.height", 600), m.get(f"{fixed}.width", 1024)
    elif m.doc.has(keep):
        h = w = m.get(f"{keep}.max_dimension", 1024)
        lo = m.get(f"{keep}.min_dimension", 600)
        if lo != h:
            m.approximate.append((f"{keep}.min_dimension", f"{lo}: Model Garden scales the long side to the input "
                                                           f"size {h} and pads; there is no minimum dimension"))
    else:
        raise ConfigError(f"{m.doc.source}: {RESIZER}: expected fixed_shape_resizer or keep_aspect_ratio_resizer")
    size = [-(-int(v) // 2 ** top) * 2 ** top for v in (h, w)]
    m.upd["task.model.input_size"] = size + [3]
    m.use(RESIZER)
    m.mapped.append((RESIZER, f"task.model.input_size {size + [3]}"))
    if size != [h, w]:
        m.approximate.append((RESIZER, f"{h}x{w} rounded up to {size[0]}x{size[1]} (a multiple of 2**{top})"))


def _anchors(m: _Migration, fpn: bool) -> None:
    ms, grid = f"{FR}.first_stage_anchor_generator.multiscale_anchor_generator", \
        f"{FR}.first_stage_anchor_generator.grid_anchor_generator"
    if m.doc.has(ms):
        m.map(f"{ms}.anchor_scale", "task.model.anchor.anchor_size")
        m.map(f"{ms}.scales_per_octave", "task.model.anchor.num_scales")
        m.map(f"{ms}.aspect_ratios", "task.model.anchor.aspect_ratios", m.doc.get_all(f"{ms}.aspect_ratios"))
        m.use(f"{ms}.min_level")
        m.use(f"{ms}.max_level")
    elif m.doc.has(grid):
        m.map(f"{grid}.aspect_ratios", "task.model.anchor.aspect_ratios", m.doc.get_all(f"{grid}.aspect_ratios"))
        scales = sorted(m.doc.get_all(f"{grid}.scales")) or [1.0]
        mid = scales[len(scales) // 2]
        stride = m.get(f"{grid}.height_stride", 16)
        m.upd["task.model.anchor.anchor_size"] = 256.0 * mid / stride
        m.upd["task.model.anchor.num_scales"] = 1
        m.approx(f"{grid}.scales", f"{scales} x 256 px on one level: Model Garden spreads num_scales within one "
                                   f"octave per level; anchor_size {256.0 * mid / stride:g} ({256 * mid:g} px) kept, "
                                   "use an FPN model for objects of many sizes")
        m.use(grid)


def _heads(m: _Migration) -> None:
    rg, tm = "task.model.roi_generator", "task.train_data.parser"
    for f, keys in (("first_stage_nms_iou_threshold", ("nms_iou_threshold", "test_nms_iou_threshold")),
                    ("first_stage_max_proposals", ("num_proposals", "test_num_proposals")),
                    ("first_stage_nms_score_threshold", ("pre_nms_score_threshold", "test_pre_nms_score_threshold"))):
        for k in keys:
            m.map(f"{FR}.{f}", f"{rg}.{k}")
    m.map(f"{FR}.first_stage_minibatch_size", f"{tm}.rpn_batch_size_per_im")
    m.map(f"{FR}.first_stage_positive_balance_fraction", f"{tm}.rpn_fg_fraction")
    for f, k in (("first_stage_localization_loss_weight", "rpn_box_weight"),
                 ("first_stage_objectness_loss_weight", "rpn_score_weight"),
                 ("second_stage_localization_loss_weight", "frcnn_box_weight"),
                 ("second_stage_classification_loss_weight", "frcnn_class_weight"),
                 ("second_stage_mask_prediction_loss_weight", "mask_weight")):
        m.map(f"{FR}.{f}", f"task.losses.{k}")
    crop, stride = m.get(f"{FR}.initial_crop_size"), m.get(f"{FR}.maxpool_stride", 1) or 1
    if crop:
        m.map(f"{FR}.initial_crop_size", "task.model.roi_aligner.crop_size", max(1, crop // stride))
        m.use(f"{FR}.maxpool_stride")
        m.use(f"{FR}.maxpool_kernel_size")
    m.map(f"{FR}.second_stage_batch_size", "task.model.roi_sampler.num_sampled_rois")
    rois = m.upd["task.model.roi_sampler.num_sampled_rois"]
    m.upd["task.model.mask_sampler.num_sampled_masks"] = rois
    m.approximate.append(("(mask targets)", f"mask_sampler.num_sampled_masks {rois} = the sampled RoIs (TFOD2 "
                                            "trains the mask head on every positive RoI of the second stage)"))
    m.map(f"{FR}.second_stage_balance_fraction", "task.model.roi_sampler.foreground_fraction")
    nms, dg = f"{FR}.second_stage_post_processing.batch_non_max_suppression", "task.model.detection_generator"
    m.map(f"{nms}.score_threshold", f"{dg}.pre_nms_score_threshold")
    m.map(f"{nms}.iou_threshold", f"{dg}.nms_iou_threshold")
    m.map(f"{nms}.max_total_detections", f"{dg}.max_num_detections")
    m.map(f"{FR}.second_stage_post_processing.score_converter", f"{dg}.use_sigmoid_probability",
          convert=lambda v: str(v) == "SIGMOID")
    m.use(f"{FR}.num_classes")
    m.use(f"{FR}.number_of_stages")
    _mask_head(m)


def _mask_head(m: _Migration) -> None:
    mp = MASK_PREDICTOR
    m.map(f"{mp}.predict_instance_masks", "task.model.include_mask", True)
    m.map(f"{mp}.mask_prediction_num_conv_layers", "task.model.mask_head.num_convs")
    m.map(f"{mp}.masks_are_class_agnostic", "task.model.mask_head.class_agnostic")
    depth = m.get(f"{mp}.mask_prediction_conv_depth")
    if depth:
        m.map(f"{mp}.mask_prediction_conv_depth", "task.model.mask_head.num_filters")
    elif depth == 0:
        m.approx(f"{mp}.mask_prediction_conv_depth", "0 (automatic in TFOD2): Model Garden's 256 filters kept")
    if not m.doc.has(f"{mp}.predict_instance_masks"):
        m.upd["task.model.include_mask"] = True
        m.approximate.append(("(Faster R-CNN: no mask head)", "include_mask: true, Model Garden's default mask head"))


# -- data and training ------------------------------------------------------------------------
def _readers(m: _Migration, label_map: Optional[str]) -> Tuple[Optional[int], List[str]]:
    """Input paths, mask settings, classes; returns (classes + 1 or None, train globs)."""
    train = m.doc.get_all("train_input_reader.tf_record_input_reader.input_path")
    m.map("train_input_reader.tf_record_input_reader.input_path", "task.train_data.input_path",
          train[0] if len(train) == 1 else train)
    evals = [r for r in ("eval_input_reader", "eval_input_reader[0]") if m.doc.has(f"{r}.tf_record_input_reader")]
    if evals:
        val = m.doc.get_all(f"{evals[0]}.tf_record_input_reader.input_path")
        m.map(f"{evals[0]}.tf_record_input_reader.input_path", "task.validation_data.input_path",
              val[0] if len(val) == 1 else val)
    for r in ("train_input_reader", "eval_input_reader"):
        m.use(f"{r}.load_instance_masks")
        if str(m.get(f"{r}.mask_type", "PNG_MASKS")) == "NUMERICAL_MASKS":
            m.approx(f"{r}.mask_type", "NUMERICAL_MASKS: Model Garden reads PNG masks only; re-convert the records "
                                       "with tfod-seg convert --mask-type png")
        else:
            m.use(f"{r}.mask_type")
    lm_path = label_map or m.get("train_input_reader.label_map_path")
    m.use("train_input_reader.label_map_path")
    m.use("eval_input_reader.label_map_path")
    try:
        lm = read_label_map(lm_path, allow_gaps=True) if lm_path else None
    except UserError as e:
        m.approximate.append(("label_map_path", f"not readable ({e}); num_classes from model.faster_rcnn.num_classes"))
        lm = None
    n = m.get(f"{FR}.num_classes")
    classes = lm.max_id + 1 if lm is not None else (n + 1 if n else None)
    if classes:
        m.upd["task.model.num_classes"] = classes
        m.mapped.append(("label map" if lm is not None else f"{FR}.num_classes", f"task.model.num_classes {classes} "
                                                                                 "(+1 background)"))
    return classes, train


def _augment(m: _Migration) -> None:
    p = "train_config.data_augmentation_options"
    parser = "task.train_data.parser"
    m.upd.update({f"{parser}.aug_rand_hflip": False, f"{parser}.aug_rand_vflip": False,
                  f"{parser}.aug_scale_min": 1.0, f"{parser}.aug_scale_max": 1.0})
    others = []
    for k, opt in enumerate(m.doc.get_all(p)):
        name = opt.fields[0].name if isinstance(opt, Message) and opt.fields else "?"
        src = f"{p}[{k}].{name}"
        if name in ("random_horizontal_flip", "random_vertical_flip"):
            m.map(src, f"{parser}.aug_rand_{'h' if 'horizontal' in name else 'v'}flip", True)
        elif name in ("random_scale_crop_and_pad_to_square", "random_square_crop_by_scale"):
            lo, hi = m.get(f"{src}.scale_min", 0.1), m.get(f"{src}.scale_max", 2.0)
            m.upd.update({f"{parser}.aug_scale_min": lo, f"{parser}.aug_scale_max": hi})
            (m.mapped.append((src, f"{parser}.aug_scale_min/max")) if name.startswith("random_scale")
             else m.approximate.append((src, f"scale {lo}-{hi} as Model Garden's scale jitter + crop/pad")))
        else:
            others.append(f"{p}.{name}")
        m.use(src)
    m.use(p)
    m.approximate.extend((o, "no Model Garden Mask R-CNN equivalent: dropped") for o in others)
    m.map("train_config.max_number_of_boxes", f"{parser}.max_num_instances")


def _schedule(m: _Migration, opt: str) -> Dict[str, Any]:
    """``learning_rate`` and ``warmup`` of ``trainer.optimizer_config`` from the TFOD2 schedule."""
    lr = f"train_config.optimizer.{opt}.learning_rate"
    msg = m.get(lr)
    sched = msg.fields[0].name if isinstance(msg, Message) and msg.fields else None
    p = f"{lr}.{sched}"
    none = {"type": None}
    if sched == "cosine_decay_learning_rate":
        if m.doc.has(f"{p}.hold_base_rate_steps"):
            m.approx(f"{p}.hold_base_rate_steps", "no Model Garden equivalent (the cosine starts after warm-up)")
        out = {"learning_rate": {"type": "cosine", "cosine": {"initial_learning_rate": m.get(f"{p}.learning_rate_base"),
                                                              "decay_steps": m.get(f"{p}.total_steps")}}}
        w = m.get(f"{p}.warmup_steps", 0)
        out["warmup"] = ({"type": "linear", "linear": {"warmup_steps": w, "warmup_learning_rate":
                          m.get(f"{p}.warmup_learning_rate", 0.0)}} if w else none)
    elif sched == "manual_step_learning_rate":
        steps = [(m.get(f"{p}.schedule[{k}].step"), m.get(f"{p}.schedule[{k}].learning_rate"))
                 for k in range(len(m.doc.get_all(f"{p}.schedule")))]
        first = m.get(f"{p}.initial_learning_rate", steps[0][1] if steps else 0.01)
        values = [first] + [v for s, v in steps if s > 0]
        if steps and steps[0][0] == 0:
            values[0] = steps[0][1]
        out = {"learning_rate": {"type": "stepwise", "stepwise": {"boundaries": [s for s, _ in steps if s > 0],
                                                                  "values": values}}, "warmup": none}
    elif sched == "exponential_decay_learning_rate":
        out = {"learning_rate": {"type": "exponential", "exponential": {
            "initial_learning_rate": m.get(f"{p}.initial_learning_rate"), "decay_steps": m.get(f"{p}.decay_steps"),
            "decay_rate": m.get(f"{p}.decay_factor", 0.95), "staircase": m.get(f"{p}.staircase", True)}}}
        w = m.get(f"{p}.burnin_steps", 0)
        out["warmup"] = ({"type": "linear", "linear": {"warmup_steps": w, "warmup_learning_rate":
                          m.get(f"{p}.burnin_learning_rate", 0.0)}} if w else none)
        if m.doc.has(f"{p}.min_learning_rate"):
            m.approx(f"{p}.min_learning_rate", "no Model Garden equivalent (the decay is not floored)")
    elif sched == "constant_learning_rate":
        out = {"learning_rate": {"type": "constant", "constant": {"learning_rate": m.get(f"{p}.learning_rate")}},
               "warmup": none}
    else:
        raise ConfigError(f"{m.doc.source}: {lr}: unsupported schedule {sched!r}")
    m.use(p)
    m.mapped.append((p, f"trainer.optimizer_config.learning_rate.{out['learning_rate']['type']}"
                        + (" + warmup.linear" if out["warmup"].get("type") else "")))
    return out


OPTIMIZERS = {"momentum_optimizer": ("sgd", {"momentum_optimizer_value": "momentum"}),
              "adam_optimizer": ("adam", {"epsilon": "epsilon"}),
              "rms_prop_optimizer": ("rmsprop", {"momentum_optimizer_value": "momentum", "decay": "rho",
                                                 "epsilon": "epsilon"})}


def _optimizer(m: _Migration) -> None:
    opt = m.get("train_config.optimizer")
    name = next((f.name for f in opt.fields if f.name in OPTIMIZERS), None) if isinstance(opt, Message) else None
    if name is None:
        raise ConfigError(f"{m.doc.source}: train_config.optimizer: expected one of {', '.join(OPTIMIZERS)}")
    kind, fields = OPTIMIZERS[name]
    body = {dst: m.get(f"train_config.optimizer.{name}.{src}") for src, dst in fields.items()
            if m.doc.has(f"train_config.optimizer.{name}.{src}")}
    for src in fields:
        m.use(f"train_config.optimizer.{name}.{src}")
    clip = m.get("train_config.gradient_clipping_by_norm")
    if clip:
        body["global_clipnorm"] = clip
        m.use("train_config.gradient_clipping_by_norm")
    m.mapped.append((f"train_config.optimizer.{name}", f"trainer.optimizer_config.optimizer.{kind}"))
    oc = {"optimizer": {"type": kind, kind: body}, **_schedule(m, name)}
    m.upd["trainer.optimizer_config"] = oc
    if m.get("train_config.optimizer.use_moving_average", False) is not True:
        m.use("train_config.optimizer.use_moving_average")


def _training(m: _Migration) -> int:
    m.map("train_config.batch_size", "task.train_data.global_batch_size")
    steps = m.get("train_config.num_steps") or m.get(
        "train_config.optimizer.momentum_optimizer.learning_rate.cosine_decay_learning_rate.total_steps")
    if not steps:
        raise ConfigError(f"{m.doc.source}: train_config.num_steps is not set; Model Garden needs a training length")
    m.map("train_config.num_steps", "trainer.train_steps", steps)
    m.upd["trainer.train_steps"] = steps
    _optimizer(m)
    _augment(m)
    m.map("eval_config.batch_size", "task.validation_data.global_batch_size")
    m.map("eval_config.include_metrics_per_category", "task.per_category_metrics")
    m.map("eval_config.num_examples", "task.validation_data.num_examples")
    for f in ("eval_config.metrics_set", "eval_config.eval_instance_masks"):
        m.use(f)
    return int(steps)


def _runtime(m: _Migration, steps: int, target: str, how: str, strategy: Optional[str]) -> str:
    values = garden_target_values(target, None)
    precision = values["mixed_precision"]
    bf = m.get("train_config.use_bfloat16")
    if bf is not None and (bf is True) == (precision == "bfloat16"):
        m.map("train_config.use_bfloat16", "runtime.mixed_precision_dtype", precision)
    elif bf is not None:
        m.approx("train_config.use_bfloat16", f"{str(bf).lower()}: precision follows the target ({target}: {precision})")
    m.upd.update({"runtime.mixed_precision_dtype": precision, "task.train_data.dtype": precision,
                  "task.validation_data.dtype": precision, "runtime.num_gpus": values["num_gpus"]})
    if strategy or target == "tpu":
        m.upd["runtime.distribution_strategy"] = strategy or "tpu"
    base = {k: values[k] for k in ("steps_per_loop", "summary_interval", "checkpoint_interval")}
    base["validation_interval"] = values["checkpoint_interval"]
    m.upd.update({f"trainer.{k}": v for k, v in garden_intervals(base, steps).items()})
    return (f"target: {target} ({how}): {precision} precision, steps_per_loop {m.upd['trainer.steps_per_loop']} "
            "(--target cpu|gpu|tpu to change)")


def _fixed(m: _Migration, train: List[str]) -> None:
    """Fields tfod-seg always sets: masks on, validation from the records, no stray checkpoint."""
    report = None
    try:
        report = read_report(find_report(train)) if train else None
    except UserError:
        report = None
    n_val = (((report or {}).get("splits") or {}).get("val") or {}).get("images")
    m.upd.setdefault("task.validation_data.num_examples", int(n_val) if n_val else -1)
    m.upd.update({"task.model.include_mask": True, "task.annotation_file": "", "task.use_coco_metrics": True,
                  "task.train_data.is_training": True, "task.validation_data.is_training": False,
                  "task.init_checkpoint": "", "trainer.validation_steps": -1})


def _header(m: _Migration, source: str, target_note: str, unmapped: List[str]) -> List[str]:
    lines = [f"Migrated by `tfod-seg config --migrate` from the TFOD2 config {source}",
             f"to Model Garden's {EXPERIMENT} (Mask R-CNN). Check it with `tfod-seg config --check`.",
             target_note, f"mapped: {len(m.mapped)} fields (table: docs/configs.md)"]
    if m.approximate:
        lines.append("approximated:")
        lines += [f"  {p}: {note}" for p, note in m.approximate]
    lines.append("no Model Garden equivalent (not migrated):" if unmapped else "no Model Garden equivalent: none")
    lines += [f"  {p}" for p in unmapped]
    return lines


def migrate_config(pipeline, out, *, label_map: Optional[str] = None, target: Optional[str] = None,
                   strategy: Optional[str] = None) -> MigrationResult:
    """Write the Model Garden Mask R-CNN experiment equivalent to the TFOD2 ``pipeline`` at
    ``out``; ``label_map`` overrides the config's; ``target``/``strategy`` as for `generate_config`."""
    check_output_kind(out, "garden")
    doc = PbtxtDocument.load(pipeline)
    if not isinstance(doc.get(FR, None), Message):
        raise ConfigError(f"{doc.source}: not a Faster/Mask R-CNN pipeline config (no '{FR}' block)")
    target_name, how = resolve_target(target, strategy)
    m = _Migration(doc)
    fpn = _backbone(m)
    _input_size(m)
    _anchors(m, fpn)
    _heads(m)
    _, train = _readers(m, label_map)
    steps = _training(m)
    target_note = _runtime(m, steps, target_name, how, strategy)
    _fixed(m, train)
    cfg = garden.base_experiment(EXPERIMENT, source=doc.source)
    garden.apply_overrides(cfg, m.upd, source=f"{doc.source} (migrated values)", experiment=EXPERIMENT)
    garden.validate(cfg, out)
    unmapped = m.unmapped()
    path = garden.dump_experiment(cfg, out, EXPERIMENT, header=_header(m, io.abspath(pipeline), target_note, unmapped))
    garden.load_experiment(path)  # the file we wrote must load back (strict)
    return MigrationResult(path, doc.source, EXPERIMENT, m.mapped, m.approximate, unmapped)


__all__ = ["migrate_config", "MigrationResult", "EXPERIMENT"]
