"""Run the real TFOD2 `model_main_tf2` / `exporter_main_v2` inside the TFOD2 interpreter.

    python -m tfod_seg.engines.tfod.launcher train|evaluate|export -- --pipeline_config_path=... ...
    python path/to/launcher.py train -- ...          # same, without tfod_seg being importable

This module runs in the TFOD2 environment (TF 2.15, `.venv-tfod`), not in tfod-seg's own one,
so it imports only the standard library, TensorFlow and `object_detection`, and nothing from
`tfod_seg`. It applies compatibility aliases that the late-2022 TFOD2 snapshot needs on the
TF versions that install on Python 3.11, then hands the flags after `--` to the real module's
absl `main`.

Launcher-only options (before `--`); TFOD2 hard-codes these, model_main_tf2 has no flag:
  --once                  evaluate: evaluate the latest checkpoint in `--checkpoint_dir` once and
                          exit, instead of polling for new checkpoints every 300 s until
                          `--eval_timeout` (3600 s) passes without one.
  --steps_per_iteration N train: steps run inside one tf.function call (TFOD2: 100). With 100,
                          `--num_train_steps` and `--checkpoint_every_n` are rounded up to
                          multiples of 100 and nothing is logged for 100 steps. Default here: 1.
  --log_every N           train: log `Step N per-step time` and the loss dict every N steps
                          (TFOD2: 100). Default here: 10.
"""

from __future__ import annotations

import sys

MODULES = {
    "train": "object_detection.model_main_tf2",
    "evaluate": "object_detection.model_main_tf2",
    "export": "object_detection.exporter_main_v2",
}

# Marker line the parent process looks for to tell "launcher started" from "interpreter broken".
READY_MARKER = "tfod-seg-launcher: running"


def apply_compat_aliases() -> list[str]:
    """Put back names the TFOD2 snapshot still imports from their pre-TF-2.15 locations.

    Returns the names that were aliased (empty when the TF version still has them all).
    """
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_ops

    aliased = []
    # TF 2.15 moved these out of control_flow_ops (to cond.py, control_flow_case.py,
    # while_loop.py); object_detection/utils/shape_utils.py and the input pipeline still call
    # control_flow_ops.case / .cond / .while_loop.
    replacements = {
        "case": _first_attr(["tensorflow.python.ops.control_flow_case:case"], tf.case),
        "cond": _first_attr(["tensorflow.python.ops.cond:cond"], tf.cond),
        "while_loop": _first_attr(["tensorflow.python.ops.while_loop:while_loop"], tf.while_loop),
    }
    for name, fn in replacements.items():
        if not hasattr(control_flow_ops, name):
            setattr(control_flow_ops, name, fn)
            aliased.append(name)
    return aliased


def apply_library_shims() -> list[str]:
    """Put back what newer NumPy and Pillow removed and the TFOD2 snapshot still uses.

    * ``np.bool``/``np.float``/``np.int``/``np.object`` (removed in NumPy 1.24), used by TFOD2's
      metrics code;
    * ``FreeTypeFont.getsize``/``ImageFont.getsize`` (removed in Pillow 10), used by
      ``visualization_utils`` when evaluation draws its side-by-side images.
    """
    import warnings

    import numpy as np

    shimmed = []
    for name, value in (("bool", bool), ("float", float), ("int", int), ("object", object)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NumPy warns on the lookup of an expired alias
            missing = not hasattr(np, name)
        if missing:
            setattr(np, name, value)
            shimmed.append(f"np.{name}")
    try:
        from PIL import ImageFont
    except ImportError:
        return shimmed

    def getsize(self, text, *args, **kwargs):
        left, top, right, bottom = self.getbbox(text, *args, **kwargs)
        return right, bottom  # what getsize returned: the extent from the origin

    for cls in (getattr(ImageFont, "FreeTypeFont", None), getattr(ImageFont, "ImageFont", None),
                getattr(ImageFont, "TransposedFont", None)):
        if cls is not None and not hasattr(cls, "getsize") and hasattr(cls, "getbbox"):
            cls.getsize = getsize
            shimmed.append(f"PIL.ImageFont.{cls.__name__}.getsize")
    return shimmed


def _first_attr(specs: list[str], default):
    import importlib

    for spec in specs:
        module_name, attr = spec.split(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            continue
    return default


def _patch_eval_once() -> None:
    """Make model_main_tf2's evaluation look at the latest checkpoint once and return."""
    from object_detection import model_lib_v2

    original = model_lib_v2.eval_continuously

    def eval_once(*args, **kwargs):
        kwargs["wait_interval"] = 0
        kwargs["timeout"] = 1
        return original(*args, **kwargs)

    model_lib_v2.eval_continuously = eval_once


def _patch_train_loop(steps_per_iteration: int, log_every: int) -> None:
    """Set the step granularity model_main_tf2 hard-codes (100 steps per call, log every 100)."""
    from object_detection import model_lib_v2

    original = model_lib_v2.train_loop
    model_lib_v2.LOG_EVERY = log_every

    def train_loop(*args, **kwargs):
        kwargs["num_steps_per_iteration"] = steps_per_iteration
        return original(*args, **kwargs)

    model_lib_v2.train_loop = train_loop


def _parse_own(options: list[str], usage: str):
    import argparse

    parser = argparse.ArgumentParser(prog="launcher.py", usage=usage, add_help=False)
    parser.add_argument("mode", choices=sorted(MODULES))
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--steps_per_iteration", type=int, default=1)
    parser.add_argument("--log_every", type=int, default=10)
    args = parser.parse_args(options)
    if args.once and args.mode != "evaluate":
        parser.error("--once only applies to evaluate")
    if args.steps_per_iteration < 1 or args.log_every < 1:
        parser.error("--steps_per_iteration and --log_every must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = "launcher.py train|evaluate|export [launcher options] -- <TFOD2 flags>"
    if "--" in argv:
        split = argv.index("--")
        own, passthrough = argv[:split], argv[split + 1 :]
    else:
        own, passthrough = argv[:1], argv[1:]
    args = _parse_own(own, usage)  # exits with status 2 and a usage line on a bad option

    import importlib
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    aliased = apply_compat_aliases() + apply_library_shims()
    module_name = MODULES[args.mode]
    module = importlib.import_module(module_name)
    if args.mode == "evaluate" and args.once:
        _patch_eval_once()
    if args.mode == "train":
        _patch_train_loop(args.steps_per_iteration, args.log_every)
    from absl import app

    print(
        f"{READY_MARKER} {module_name} (aliases: {', '.join(aliased) or 'none'})",
        file=sys.stderr,
        flush=True,
    )
    # absl parses the flags from argv[1:] and reports a bad flag itself; SystemExit carries
    # the exit status.
    try:
        app.run(module.main, argv=[module_name] + passthrough)
    except SystemExit as e:
        code = e.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
