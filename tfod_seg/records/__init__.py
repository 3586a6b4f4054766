"""TFRecords: tf.train.Example encoding, the sharded parallel writer, conversion, reading back, inspection.

Record writers are found by name (``WRITERS``): each has ``check(out_dir)`` (usage errors,
before anything is created) and ``write(plan, out_dir, tally, progress)`` (see
`tfod_seg.records.convert.LocalWriter`). Adding one is one module
plus one line below; entries are ``"module:attribute"`` strings imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Dict

from tfod_seg.errors import UserError

WRITERS: Dict[str, str] = {
    "local": "tfod_seg.records.convert:LocalWriter",  # worker processes on this machine (default)
    "beam": "tfod_seg.records.beam:BeamWriter",  # an Apache Beam pipeline on one of BEAM_RUNNERS
}

# ``convert --runner`` name → Beam runner class (the beam writer's runners; here so the CLI can
# list them without importing the writer).
BEAM_RUNNERS: Dict[str, str] = {"direct": "DirectRunner", "dataflow": "DataflowRunner", "flink": "FlinkRunner",
                                "spark": "SparkRunner"}


def get_writer(name: str, **options):
    """A new writer registered as ``name``, built with ``options``; `UserError` for an unknown name."""
    if name not in WRITERS:
        raise UserError(f"unknown record writer {name!r} (expected one of {', '.join(WRITERS)})")
    module, attr = WRITERS[name].split(":")
    return getattr(importlib.import_module(module), attr)(**options)
