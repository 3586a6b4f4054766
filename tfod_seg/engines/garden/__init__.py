"""The ``garden`` engine: TF Model Garden (`official.vision`) Mask R-CNN.

`engine.GardenEngine` implements `tfod_seg.engines.base.Engine` over `train.train`,
`evaluate.evaluate` and `export.export`, which call Model Garden's own library
(`official.core.train_lib`, `task_factory`, `train_utils`, Orbit); `runtime` holds what they
share (config loading, distribution strategy, validation set-up). Modules import TensorFlow
lazily, so importing this package is cheap.
"""
