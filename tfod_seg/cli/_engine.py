"""What `train`, `evaluate` and `export` share: the engine flags, resolving the engine once,
and the preflight check. CLI only: library modules are imported inside the functions."""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("tfod_seg.cli")


def add_engine_flag(parser) -> None:
    parser.add_argument("--engine", default=None, metavar="NAME",
                        help="override the engine chosen from the config's extension (garden or tfod)")


def add_tfod_python(group) -> None:
    group.add_argument("--tfod-python", dest="tfod_python", default=None, metavar="PATH",
                       help="Python interpreter of the TFOD2 environment (default: .venv-tfod, found automatically)")


def prepare(mode: str, args, options):
    """Resolve the engine for ``options.config_path`` (once), reject the options it does not
    take, run the preflight checks (paths, devices, batch vs replicas); return the engine."""
    from tfod_seg.engines import engine_for
    from tfod_seg.engines.base import check_supported
    from tfod_seg.engines.preflight import flags_from_options, preflight

    engine = engine_for(options.config_path, getattr(args, "engine", None))
    check_supported(engine, options)
    flags = flags_from_options(options, num_tpu_cores=getattr(args, "num_tpu_cores", None),
                               metrics_json=getattr(args, "metrics_json", None))
    report = preflight(mode, engine.name, options.config_path, flags)
    for note in report.notes:  # e.g. "strategy auto picked gpu (1 GPU visible)"
        print(f"preflight: {note}", file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return engine
