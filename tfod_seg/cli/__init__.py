"""The `tfod-seg` command: one argparse entry point with subcommands.

Each subcommand lives in its own module under `tfod_seg.cli` and exposes

    NAME = "convert"                     # the subcommand
    HELP = "one line for `tfod-seg --help`"
    def add_arguments(parser): ...       # flags, with an epilog of examples
    def run(args) -> int: ...            # thin: calls library code, returns an exit status

Modules are imported when the parser is built, so they must not import TensorFlow (or
NumPy-heavy stacks) at module level: heavy imports go inside `run`.

A `UserError` raised anywhere below `run` is printed as ``error: <message>`` without a
traceback and gives exit status 2. Ctrl-C gives 130.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from typing import List, Optional

from tfod_seg import __version__
from tfod_seg.cli._quiet import quiet_output

# Order is the order shown in --help: pipeline stages first to last.
SUBCOMMANDS = [
    "convert",
    "labelmap",
    "inspect",
    "templates",
    "config",
    "train",
    "evaluate",
    "export",
    "launch",
    "infer",
    "score",
    "visualize",
    "zones",
    "demo",
]


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _load(name: str):
    """The subcommand module; a missing one is an error (every name in SUBCOMMANDS must exist)."""
    return importlib.import_module(f"tfod_seg.cli.{name}_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfod-seg",
        description="Annotated images to a deployed Mask R-CNN instance-segmentation model on TensorFlow.",
        formatter_class=_Formatter,
        epilog="Run `tfod-seg COMMAND --help` for the flags and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"tfod-seg {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        mod = _load(name)
        p = sub.add_parser(
            mod.NAME,
            help=mod.HELP,
            description=getattr(mod, "DESCRIPTION", mod.HELP),
            epilog=getattr(mod, "EPILOG", None),
            formatter_class=_Formatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from tfod_seg.errors import UserError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    level = logging.WARNING - 10 * args.verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_output(args, args.verbose):  # library noise to the command's log file (-v: shown)
            return int(args._run(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def console_main() -> None:
    """The ``tfod-seg`` console script and ``python -m tfod_seg``: `main`, then exit.

    After a command that imported TensorFlow, the process ends with ``os._exit`` once the output
    streams and log files are flushed, skipping the interpreter's teardown of TensorFlow objects:
    destroying the training input pipeline's tf.data iterator waits for its autotuning thread,
    which sleeps up to a minute between rounds (measured: 30-50 s after `tfod-seg demo` printed
    its result on one core). Every file the commands write is closed, checkpoints are synced and
    summaries flushed before `main` returns, so nothing is lost. In-process callers (the tests)
    use `main`, which never exits the process.
    """
    code = main()
    if "tensorflow" not in sys.modules:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)
