"""Run the real TFOD2 `model_main_tf2` / `exporter_main_v2` inside the TFOD2 interpreter.

    python -m tfod_seg.engines.tfod.launcher train|evaluate|export -- --pipeline_config_path=... ...
    python path/to/launcher.py train -- ...          # same, without tfod_seg being importable

This module runs in the TFOD2 environment (TF 2.15, `.venv-tfod`), not in tfod-seg's own one,
so it imports only the standard library, TensorFlow and `object_detection`, and nothing from
`tfod_seg`. It applies compatibility aliases that the late-2022 TFOD2 snapshot needs on the
TF versions that install on Python 3.11, then hands the flags after `--` to the real module's
absl `main`.

Launcher-only option (before `--`): `--once` for `evaluate`: evaluate the latest checkpoint in
`--checkpoint_dir` once and exit, instead of TFOD2's default of polling for new checkpoints
every 300 s until `--eval_timeout` (3600 s) passes without one.
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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: launcher.py train|evaluate|export [--once] -- <TFOD2 flags>"
    if "--" in argv:
        split = argv.index("--")
        own, passthrough = argv[:split], argv[split + 1 :]
    else:
        own, passthrough = argv[:1], argv[1:]
    if not own or own[0] not in MODULES:
        print(usage, file=sys.stderr)
        return 2
    mode, options = own[0], own[1:]
    unknown = [o for o in options if o != "--once"]
    if unknown:
        print(f"launcher: unknown option(s) {unknown}; {usage}", file=sys.stderr)
        return 2
    once = "--once" in options
    if once and mode != "evaluate":
        print("launcher: --once only applies to evaluate", file=sys.stderr)
        return 2

    import importlib
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    aliased = apply_compat_aliases()
    module = importlib.import_module(MODULES[mode])
    if once:
        _patch_eval_once()
    from absl import app

    print(
        f"{READY_MARKER} {MODULES[mode]} (aliases: {', '.join(aliased) or 'none'})",
        file=sys.stderr,
        flush=True,
    )
    # absl parses flags from argv[1:]; SystemExit carries the exit status.
    try:
        app.run(module.main, argv=[MODULES[mode]] + passthrough)
    except SystemExit as e:
        code = e.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
