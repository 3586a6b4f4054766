"""Run the real TFOD2 `model_main_tf2` / `exporter_main_v2` inside the TFOD2 interpreter.

    python -m tfod_seg.engines.tfod.launcher train|evaluate|export -- --pipeline_config_path=... ...
    python path/to/launcher.py train -- ...          # same, without tfod_seg being importable

This module runs in the TFOD2 environment (TF 2.15, `.venv-tfod`), not in tfod-seg's own one,
so it imports only the standard library, TensorFlow and `object_detection`, and nothing from
`tfod_seg`. It makes sure the compatibility fixes the late-2022 TFOD2 snapshot needs on the
stack that installs on Python 3.11 are in place (`compat.py`; in `.venv-tfod` its start-up hook
has already installed them), then hands the flags after `--` to the real module's absl `main`.

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


def install_compat():
    """The TFOD2 compatibility fixes (`compat.py` beside this file), as the environment's
    start-up hook installs them; returns that module (``applied()`` lists what was put back).

    In `.venv-tfod` the hook (``tfod_seg_tfod2_compat.pth``, written by tools/setup_tfod_env.sh)
    has already loaded it when the interpreter started; elsewhere (a user's own TFOD2
    interpreter) it is loaded here, by its path, under the same module name: one copy of the
    fixes either way.
    """
    import importlib.util
    import os

    name = "tfod_seg_tfod2_compat"  # compat.HOOK_NAME (this module imports nothing from tfod_seg)
    module = sys.modules.get(name)
    if module is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compat.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    module.install()
    return module


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
    compat = install_compat()
    module_name = MODULES[args.mode]
    module = importlib.import_module(module_name)
    if args.mode == "evaluate" and args.once:
        _patch_eval_once()
    if args.mode == "train":
        _patch_train_loop(args.steps_per_iteration, args.log_every)
    from absl import app

    print(
        f"{READY_MARKER} {module_name} (compatibility fixes so far: {', '.join(compat.applied()) or 'none'})",
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
