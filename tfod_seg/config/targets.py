"""Target hardware (``--target cpu|gpu|tpu``): the config fields that only suit one kind of machine.

TFOD2 (``pipeline.config``): the zoo's TPU configs carry settings that only pay off, or only
work, on a TPU. For a CPU or GPU job they are cleared (set false, comments kept); for a TPU job
they are set, with the static-shape requirements they imply:

================================================  ===================================================
field                                             why it is TPU-only
================================================  ===================================================
``model.faster_rcnn.use_static_shapes``            XLA on TPU needs static shapes; on CPU/GPU it only
                                                  pads every batch to the maximum
``model.faster_rcnn.use_matmul_crop_and_resize``   crop-and-resize as matmuls (fast on the MXU, slow
                                                  elsewhere)
``model.faster_rcnn.use_matmul_gather_in_matcher`` gathers as matmuls (same)
``model.faster_rcnn.use_static_balanced_label_sampler``  fixed-size sampler for static shapes
``train_config.use_bfloat16``                      bfloat16 is the TPU's precision; model_main_tf2
                                                  ignores it without ``--use_tpu``
================================================  ===================================================

A TPU job also gets ``unpad_groundtruth_tensors: false`` (padded ground truth), ``clip_anchors_to_image:
true`` and, with a ``keep_aspect_ratio_resizer``, ``pad_to_max_dimension: true`` (static image size).
TF1's ``sync_replicas`` / ``replicas_to_aggregate`` / ``startup_delay_steps`` (unused by model_main_tf2)
are removed for CPU/GPU. TFOD2 has no float16 training: precision is bfloat16 on TPU, float32 elsewhere.

Model Garden (experiment YAML): the target sets ``runtime.mixed_precision_dtype`` (and the data
``dtype`` to match) and the loop sizes, from `GARDEN_TARGETS`. A TPU spends most of a short loop on
host round trips, so its loops are Model Garden's own TPU recipe length (500 steps); a GPU loop of
100 steps keeps progress and summaries frequent at little cost; a CPU step takes seconds, so its
loops are short (25) to show progress and checkpoint every few minutes. ``runtime.num_gpus`` is 1
for a GPU target: Model Garden's own runner (``python -m official.vision.train``) builds its
``mirrored`` / ``one_device`` strategy from it and, at its default 0, trains on the CPU even on a
GPU machine (``tfod-seg train`` counts the visible GPUs itself and overrides it).

The default target follows ``--strategy`` (``tpu`` → tpu, any other → gpu), else gpu.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from tfod_seg.errors import ConfigError

TARGETS = ("cpu", "gpu", "tpu")
DEFAULT_TARGET = "gpu"
# Strategy names of `tfod-seg config` (Model Garden's) and of `tfod-seg train`, and the hardware they mean.
STRATEGY_TARGETS = {"tpu": "tpu", "mirrored": "gpu", "multi_worker_mirrored": "gpu", "one_device": "gpu",
                    "multi_worker": "gpu", "gpu": "gpu", "cpu": "cpu", "auto": None}

FR = "model.faster_rcnn"
TFOD_TPU_ONLY: Dict[str, str] = {
    f"{FR}.use_static_shapes": "static shapes for XLA on TPU; on CPU/GPU every batch is padded to the maximum",
    f"{FR}.use_matmul_crop_and_resize": "crop-and-resize as matmuls: fast on a TPU, slow on CPU/GPU",
    f"{FR}.use_matmul_gather_in_matcher": "gathers as matmuls: fast on a TPU, slow on CPU/GPU",
    f"{FR}.use_static_balanced_label_sampler": "the fixed-size sampler static shapes need",
    "train_config.use_bfloat16": "bfloat16 is the TPU's precision (model_main_tf2 ignores it without --use_tpu)",
}
TFOD_TPU_REQUIRED: Dict[str, Any] = {
    "train_config.unpad_groundtruth_tensors": False,
    f"{FR}.clip_anchors_to_image": True,
}
TF1_SYNC_FIELDS = ("train_config.sync_replicas", "train_config.replicas_to_aggregate",
                   "train_config.startup_delay_steps")
KEEP_ASPECT = f"{FR}.image_resizer.keep_aspect_ratio_resizer"

GARDEN_TARGETS: Dict[str, Dict[str, Any]] = {
    "cpu": {"mixed_precision": "float32", "steps_per_loop": 25, "summary_interval": 25, "checkpoint_interval": 100,
            "num_gpus": 0},
    "gpu": {"mixed_precision": "float16", "steps_per_loop": 100, "summary_interval": 100,
            "checkpoint_interval": 1000, "num_gpus": 1},
    "tpu": {"mixed_precision": "bfloat16", "steps_per_loop": 500, "summary_interval": 500,
            "checkpoint_interval": 500, "num_gpus": 0},
}
GARDEN_PRECISION = {t: v["mixed_precision"] for t, v in GARDEN_TARGETS.items()}


def resolve_target(target: Optional[str], strategy: Optional[str]) -> Tuple[str, str]:
    """(target, how it was chosen). ``--target tpu`` with a non-TPU ``--strategy`` (or the
    reverse) is a ConfigError."""
    implied = STRATEGY_TARGETS.get(strategy) if strategy else None
    if target is not None:
        if target not in TARGETS:
            raise ConfigError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
        if strategy and (target == "tpu") != (strategy == "tpu"):
            raise ConfigError(f"--target {target} does not match --strategy {strategy}: a TPU job needs both "
                              "--target tpu and --strategy tpu")
        return target, "--target"
    if implied:
        return implied, f"from --strategy {strategy}"
    return DEFAULT_TARGET, "default"


# -- TFOD2 ------------------------------------------------------------------------------------
def tfod_precision(target: str, mixed_precision: Optional[str]) -> bool:
    """``use_bfloat16`` for the target and an explicit ``--mixed-precision`` (checked)."""
    if mixed_precision in (None, "float32"):
        return target == "tpu" and mixed_precision is None
    if mixed_precision == "float16":
        raise ConfigError("--mixed-precision float16: TFOD2 has no float16 training (bfloat16 on TPU, float32 "
                          "elsewhere); use the garden engine for float16 on GPUs")
    if target != "tpu":
        raise ConfigError(f"--mixed-precision bfloat16 needs --target tpu (TFOD2 uses bfloat16 only on TPUs; "
                          f"the target is {target})")
    return True


def apply_tfod_target(doc, target: str, bfloat16: bool) -> List[str]:
    """Set or clear the TPU-only fields of a pipeline.config for ``target``; return header notes."""
    if target == "tpu":
        for field in TFOD_TPU_ONLY:
            doc.set(field, bfloat16 if field == "train_config.use_bfloat16" else True)
        for field, value in TFOD_TPU_REQUIRED.items():
            doc.set(field, value)
        if doc.has(KEEP_ASPECT):
            doc.set(f"{KEEP_ASPECT}.pad_to_max_dimension", True)
        notes = [f"target tpu: set {', '.join(_leaf(f) for f in TFOD_TPU_ONLY if f != 'train_config.use_bfloat16')}"
                 f" true; use_bfloat16 {str(bfloat16).lower()}; unpad_groundtruth_tensors false, "
                 "clip_anchors_to_image true" + (", pad_to_max_dimension true" if doc.has(KEEP_ASPECT) else "")
                 + "; train with `tfod-seg train --strategy tpu --tpu_name ...`"]
        return notes
    cleared = [f for f in TFOD_TPU_ONLY if doc.get(f, False) is True]
    for field in TFOD_TPU_ONLY:
        if doc.has(field):
            doc.set(field, False)
    removed = [f for f in TF1_SYNC_FIELDS if doc.remove(f, missing_ok=True)]
    note = f"target {target}: TPU-only fields " + (
        f"cleared (set false): {', '.join(_leaf(f) for f in cleared)}" if cleared else "none set")
    if removed:
        note += f"; removed TF1-only {', '.join(_leaf(f) for f in removed)} (unused by model_main_tf2)"
    return [note + "; precision float32"]


def check_tfod_target(doc, strategy: Optional[str]) -> List[Tuple[str, str]]:
    """(field, message) warnings where the TPU-only fields do not match the strategy the train
    command will use (``None``/``auto``: not a TPU)."""
    out = []
    tpu = strategy == "tpu"
    if not tpu:
        run = f"`tfod-seg train --strategy {strategy or 'auto'}`"
        for field, why in TFOD_TPU_ONLY.items():
            if doc.get(field, False) is True:
                out.append((field, f"is true but {run} does not run on a TPU ({why}); set it false or regenerate "
                                   "with --target gpu|cpu"))
        return out
    for field, why in TFOD_TPU_ONLY.items():
        if doc.get(field, False) is not True:
            out.append((field, f"is not true but the job runs on a TPU ({why}); regenerate with --target tpu"))
    if doc.get("train_config.unpad_groundtruth_tensors", True) is not False:
        out.append(("train_config.unpad_groundtruth_tensors", "should be false on a TPU (static shapes)"))
    if doc.has(KEEP_ASPECT) and doc.get(f"{KEEP_ASPECT}.pad_to_max_dimension", False) is not True:
        out.append((f"{KEEP_ASPECT}.pad_to_max_dimension", "should be true on a TPU (static image size)"))
    return out


def _leaf(field: str) -> str:
    return field.rpartition(".")[2]


# -- Model Garden -----------------------------------------------------------------------------
def garden_target_values(target: str, mixed_precision: Optional[str]) -> Dict[str, Any]:
    """The target's Model Garden values (``mixed_precision``, loop sizes); an explicit
    ``--mixed-precision`` wins."""
    values = dict(GARDEN_TARGETS[target])
    if mixed_precision is not None:
        values["mixed_precision"] = mixed_precision
    return values


def check_garden_target(strategy: str, precision: str, steps_per_loop: int, train_steps: int,
                        data_dtypes) -> List[Tuple[str, str]]:
    """(field, message) warnings where precision or loop size does not suit the strategy."""
    out = []
    target = STRATEGY_TARGETS.get(strategy) or DEFAULT_TARGET
    rt = "runtime.mixed_precision_dtype"
    if target == "tpu" and precision == "float16":
        out.append((rt, "is float16 but the strategy is tpu: TPUs compute in bfloat16 (--target tpu)"))
    elif target != "tpu" and precision == "bfloat16":
        out.append((rt, f"is bfloat16 but the strategy is {strategy} (not a TPU): use float16 on GPUs, float32 "
                        "on CPUs (--target gpu|cpu)"))
    if target == "tpu" and steps_per_loop < min(GARDEN_TARGETS["tpu"]["steps_per_loop"], train_steps or 0):
        out.append(("trainer.steps_per_loop", f"{steps_per_loop} on a TPU: short loops spend most of the time on "
                                              f"host round trips (--target tpu uses {GARDEN_TARGETS['tpu']['steps_per_loop']})"))
    for field, dtype in data_dtypes:
        if precision in ("float16", "bfloat16") and dtype not in (precision, None):
            out.append((field, f"is {dtype} but runtime.mixed_precision_dtype is {precision}: the input pipeline "
                               "should feed the same precision"))
    return out


__all__ = ["TARGETS", "DEFAULT_TARGET", "STRATEGY_TARGETS", "TFOD_TPU_ONLY", "GARDEN_TARGETS", "resolve_target",
           "tfod_precision", "apply_tfod_target", "check_tfod_target", "garden_target_values",
           "check_garden_target"]
