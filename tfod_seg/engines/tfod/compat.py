"""The fixes the late-2022 TFOD2 snapshot needs on the stack that installs on Python 3.11.

The one copy of them. In the TFOD2 environment (`make tfod-env`) they apply when the interpreter
starts: `tools/setup_tfod_env.sh` writes ``tfod_seg_tfod2_compat.pth`` into the environment's
site-packages, which loads THIS file by its path (so it works whether or not `tfod_seg` is
installed there) and calls `install()`. TFOD2's own scripts (``python -m
object_detection.model_main_tf2``, ``exporter_main_v2``, notebooks) then run unchanged. The
launcher (`launcher.py`) calls `install()` too, for an interpreter without the hook (a user's
own TFOD2 installation).

Importing this module costs nothing: it uses only the standard library, and each fix is applied
right after the module it fixes is first imported (a post-import hook on `sys.meta_path`), so
``python -c pass`` in the environment imports neither TensorFlow nor NumPy.

The fixes (each applied only when the name is missing; `applied()` lists what was applied):

* ``tensorflow.python.ops.control_flow_ops.case`` / ``cond`` / ``while_loop``: TF 2.15 moved them
  to ``control_flow_case``, ``cond`` and ``while_loop``; tf_slim's ``tfexample_decoder`` (the
  TFOD2 input pipeline's decoder) and metrics still call them there.
* ``np.bool`` / ``np.float`` / ``np.int`` / ``np.object``: removed in NumPy 1.24; TFOD2's
  ``coco_evaluation`` (mask metrics) and ``utils/metrics`` use them. Not pinned instead:
  TF 2.15's stack (SciPy, pandas, scikit-learn) needs NumPy >= 1.25.
* ``PIL.ImageFont.FreeTypeFont.getsize`` (and ``ImageFont``/``TransposedFont``): removed in
  Pillow 10; ``visualization_utils.draw_bounding_box_on_image`` measures its labels with it.
  Not pinned instead: tfod-seg, installed in the same environment, needs Pillow >= 10.
* ``COCOEvalWrapper.category_stats`` (``object_detection.metrics.coco_tools``): per-category
  COCO metrics that only the TensorFlow fork of pycocotools computed in ``summarize()``; with
  PyPI's pycocotools, ``eval_config { include_metrics_per_category: true }`` made
  ``model_main_tf2 --checkpoint_dir`` fail with ``ValueError: Category stats do not exist``.
  Computed here from ``eval['precision']``/``eval['recall']`` the way ``summarize()`` computes
  ``stats``, one column per category of ``params.catIds``. No fork is published on PyPI to pin.
"""

from __future__ import annotations

import importlib.abc
import sys
import warnings

HOOK_NAME = "tfod_seg_tfod2_compat"  # the name the .pth hook registers this module under

_applied: list[str] = []


def _control_flow_ops(module) -> list[str]:
    """Module-level ``__getattr__`` resolving the moved functions on first use (importing
    their new modules here, while control_flow_ops itself is being imported, would be circular)."""
    import importlib

    moved = {"case": ("tensorflow.python.ops.control_flow_case", "case"),
             "cond": ("tensorflow.python.ops.cond", "cond"),
             "while_loop": ("tensorflow.python.ops.while_loop", "while_loop")}
    missing = {name: where for name, where in moved.items() if name not in vars(module)}
    if not missing:
        return []
    previous = vars(module).get("__getattr__")

    def __getattr__(name):
        if name in missing:
            module_name, attr = missing[name]
            value = getattr(importlib.import_module(module_name), attr)
            setattr(module, name, value)
            return value
        if previous is not None:
            return previous(name)
        raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")

    module.__getattr__ = __getattr__
    return [f"control_flow_ops.{name}" for name in missing]


def _numpy(module) -> list[str]:
    done = []
    for name, value in (("bool", bool), ("float", float), ("int", int), ("object", object)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NumPy warns on the lookup of an expired alias
            missing = not hasattr(module, name)
        if missing:
            setattr(module, name, value)
            done.append(f"np.{name}")
    return done


def _getsize(self, text, *args, **kwargs):
    """Pillow < 10 ``getsize``: the text's extent from the origin, ``(right, bottom)``."""
    left, top, right, bottom = self.getbbox(text, *args, **kwargs)
    return right, bottom


def _pil_image_font(module) -> list[str]:
    done = []
    for cls_name in ("FreeTypeFont", "ImageFont", "TransposedFont"):
        cls = getattr(module, cls_name, None)
        if cls is not None and not hasattr(cls, "getsize") and hasattr(cls, "getbbox"):
            cls.getsize = _getsize
            done.append(f"PIL.ImageFont.{cls_name}.getsize")
    return done


# (average precision?, IoU threshold or None for .50:.95, area range, index into params.maxDets):
# the rows of COCOeval.stats, in its order.
_STATS = {
    "bbox": [(True, None, "all", -1), (True, 0.5, "all", -1), (True, 0.75, "all", -1),
             (True, None, "small", -1), (True, None, "medium", -1), (True, None, "large", -1),
             (False, None, "all", 0), (False, None, "all", 1), (False, None, "all", 2),
             (False, None, "small", -1), (False, None, "medium", -1), (False, None, "large", -1)],
    "keypoints": [(True, None, "all", -1), (True, 0.5, "all", -1), (True, 0.75, "all", -1),
                  (True, None, "medium", -1), (True, None, "large", -1), (False, None, "all", -1),
                  (False, 0.5, "all", -1), (False, 0.75, "all", -1), (False, None, "medium", -1),
                  (False, None, "large", -1)],
}
_STATS["segm"] = _STATS["bbox"]


def category_stats(coco_eval):
    """``[len(stats), len(params.catIds)]``: COCOeval's summary metrics per category (-1: none)."""
    import numpy as np

    p = coco_eval.params
    rows = _STATS["keypoints" if p.iouType == "keypoints" else "bbox"]
    out = np.full((len(rows), len(p.catIds)), -1.0)
    for r, (ap, iou, area, max_index) in enumerate(rows):
        values = coco_eval.eval["precision" if ap else "recall"]  # [T, R, K, A, M] / [T, K, A, M]
        if iou is not None:
            values = values[np.where(np.isclose(p.iouThrs, iou))[0]]
        a, m = p.areaRngLbl.index(area), max_index % len(p.maxDets)
        for k in range(len(p.catIds)):
            v = values[:, :, k, a, m] if ap else values[:, k, a, m]
            v = v[v > -1]
            out[r, k] = float(np.mean(v)) if v.size else -1.0
    return out


def _coco_tools(module) -> list[str]:
    wrapper = getattr(module, "COCOEvalWrapper", None)
    if wrapper is None or getattr(wrapper.summarize, "tfod_seg_compat", False):
        return []
    original = wrapper.summarize

    def summarize(self):
        original(self)
        if not hasattr(self, "category_stats"):  # PyPI pycocotools; the TF fork sets it itself
            self.category_stats = category_stats(self)

    summarize.tfod_seg_compat = True
    wrapper.summarize = summarize
    return ["COCOEvalWrapper.category_stats"]


FIXES = {
    "tensorflow.python.ops.control_flow_ops": _control_flow_ops,
    "numpy": _numpy,
    "PIL.ImageFont": _pil_image_font,
    "object_detection.metrics.coco_tools": _coco_tools,
}


def _apply(name: str, module) -> None:
    try:
        _applied.extend(FIXES[name](module))
    except Exception as e:  # a fix must never break the interpreter it runs in
        print(f"{HOOK_NAME}: could not apply the fix for {name}: {e!r}", file=sys.stderr)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for the modules in `FIXES`, asks the other finders for the spec and
    wraps its loader's ``exec_module`` so the fix runs right after the module's own code."""

    tfod_seg_compat = True  # marker: one finder per interpreter, whichever copy installed it

    def find_spec(self, name, path, target=None):
        if name not in FIXES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module):
            original(module)
            _apply(name, module)

        loader.exec_module = exec_module  # the loader instance belongs to this one spec
        return spec


def install() -> None:
    """Apply every fix now to the modules already imported, and on import to the others.

    Idempotent, also across copies of this file loaded under different names."""
    for name in FIXES:
        if name in sys.modules:
            _apply(name, sys.modules[name])
    if not any(getattr(f, "tfod_seg_compat", False) for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportFinder())


def applied() -> list[str]:
    """The names put back so far in this interpreter (empty on a stack that has them all)."""
    return list(_applied)
