"""The `tfod` engine: the real TFOD2 `model_main_tf2` / `exporter_main_v2` in their own interpreter.

TFOD2 needs TF 2.15 and its own pinned stack (`make tfod-env` builds `.venv-tfod`), so it never
runs in tfod-seg's process: `run` checks the known traps, spawns the launcher
(`tfod_seg/engines/tfod/launcher.py`) in the TFOD2 interpreter, turns its log into
`TrainEvent`s and saves the full log to a file. `engine.TfodEngine` implements
`tfod_seg.engines.base.Engine` over it.
"""

from tfod_seg.engines.tfod.runner import run

__all__ = ["run"]
