"""Export a trained Model Garden Mask R-CNN as a SavedModel with TFOD2's `serving_default`.

Layout written (TFOD2 `exporter_main_v2` layout, plus the label map)::

    OUTPUT_DIRECTORY/
      saved_model/        SavedModel; signature `serving_default`, input `input_tensor`
      checkpoint/         the exported weights (tf.train.Checkpoint of the model)
      pipeline.yaml       the experiment YAML the model was trained with (copied as-is)
      label_map.pbtxt     the label map of the training records (when it can be found)
      params.yaml         the fully resolved config, as Model Garden writes it

``checkpoint`` picks what is exported: the latest checkpoint of the training run (default),
``"best"`` (the best checkpoint kept by ``train --eval_every``, in ``MODEL_DIR/best/``), or a
checkpoint prefix. Every path may be a URL (``gs://``).

The outputs of `serving_default` are documented in `tfod_seg.engines.garden.signature`.
The saving itself is Model Garden's `export_saved_model_lib.export_inference_graph`, given
the `TFODDetectionModule` wrapper.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import tempfile
from typing import Any, List, Optional

from tfod_seg import io
from tfod_seg.config.garden import load_experiment
from tfod_seg.engines.base import ExportResult
from tfod_seg.engines.garden import runtime
from tfod_seg.errors import ConfigError, EngineError
from tfod_seg.records.metadata import find_label_map as records_label_map

logger = logging.getLogger(__name__)

INPUT_TYPES = ("image_tensor", "encoded_image_string_tensor", "tf_example")
BEST = "best"

# `tfod-seg config` writes "# label map: /abs/label_map.pbtxt (3 classes: a, b, c)" in the header.
_LABEL_MAP_HEADER = re.compile(r"^#\s*(?:tfod-seg\s+)?label[ _]map:\s*(\S.*?)(?:\s+\(\d+ classes?\b.*\))?\s*$",
                               re.MULTILINE)


def latest_checkpoint(trained_checkpoint_dir: str) -> str:
    """The newest checkpoint prefix in `trained_checkpoint_dir`, or a clear `EngineError`."""
    import tensorflow as tf

    d = io.check_path(trained_checkpoint_dir, "--trained_checkpoint_dir")
    if not io.isdir(d):
        raise EngineError(f"{d}: trained checkpoint directory does not exist; expected the --model_dir of `tfod-seg train`")
    ckpt = tf.train.latest_checkpoint(d)
    if not ckpt:
        raise EngineError(
            f"{d}: no checkpoint found (no 'checkpoint' index file with ckpt-N.index files); "
            "expected the --model_dir of a `tfod-seg train` run that saved at least one checkpoint"
        )
    return ckpt


def choose_checkpoint(trained_checkpoint_dir: str, checkpoint: Optional[str] = None) -> str:
    """The checkpoint prefix to export: latest (``None``), ``"best"`` (``MODEL_DIR/best/``) or a prefix."""
    if checkpoint is None or checkpoint == "latest":
        return latest_checkpoint(trained_checkpoint_dir)
    if checkpoint == BEST:
        best_dir = io.join(trained_checkpoint_dir, BEST)
        if not io.isdir(best_dir):
            raise EngineError(f"--checkpoint best: {best_dir} does not exist; train with --eval_every N to keep "
                              "the best checkpoint, or export the latest one (leave out --checkpoint)")
        return runtime.resolve_checkpoint(best_dir, "--checkpoint best")
    return runtime.resolve_checkpoint(checkpoint, "--checkpoint")


def find_label_map(config_path: str, params=None) -> Optional[str]:
    """Locate the label map belonging to a tfod-seg experiment YAML.

    Looked up in order: the ``# label map: PATH (N classes: ...)`` header line that
    `tfod-seg config` writes (or ``# tfod-seg label_map: PATH``); the
    ``report.json`` written by `tfod-seg convert` beside the training records (its
    ``label_map`` key); a ``label_map.pbtxt`` beside the training records
    (`task.train_data.input_path`). Relative paths are taken relative to the YAML's folder.
    """
    base = io.dirname(io.abspath(config_path))
    m = _LABEL_MAP_HEADER.search(io.read_text(config_path, ConfigError, "config"))
    if m and io.isfile(io.resolve(m.group(1), base)):
        return io.resolve(m.group(1), base)
    if params is None:
        return None
    return records_label_map(params.task.train_data.input_path, base)


@dataclasses.dataclass
class _ExportPlan:
    config_path: str
    output_directory: str
    checkpoint: str
    input_type: str
    params: Any
    batch_size: Optional[int] = 1  # None: any batch (dynamic)


def _plan(config_path, trained_checkpoint_dir, output_directory, input_type: str,
          checkpoint: Optional[str]) -> _ExportPlan:
    if input_type not in INPUT_TYPES:
        raise ConfigError(f"--input_type: got '{input_type}', expected one of {', '.join(INPUT_TYPES)}")
    config_path = io.check_path(config_path, "config")
    output_directory = io.abspath(io.check_path(output_directory, "--output_directory"))
    ckpt = choose_checkpoint(io.check_path(trained_checkpoint_dir, "--trained_checkpoint_dir"), checkpoint)
    _, params = load_experiment(config_path)
    model_cfg = params.task.model
    if not getattr(model_cfg, "include_mask", False):
        raise ConfigError(f"{config_path}: task.model.include_mask is false; the TFOD2 signature needs a Mask R-CNN with masks")
    if not model_cfg.detection_generator.apply_nms:
        raise ConfigError(f"{config_path}: task.model.detection_generator.apply_nms is false; expected true for export")
    return _ExportPlan(config_path, output_directory, ckpt, input_type, params)


def _write_saved_model(plan: _ExportPlan, staging: str) -> None:
    """Model Garden's `export_inference_graph` with the TFOD2 signature module, into ``staging``."""
    import tensorflow as tf
    from official.vision.serving import export_saved_model_lib

    from tfod_seg.engines.garden import signature  # imports TensorFlow at module level

    mg_input_type = signature.INPUT_TYPES[plan.input_type]
    image_size = [int(x) for x in plan.params.task.model.input_size[:2]]
    module = signature.TFODDetectionModule(params=plan.params, batch_size=plan.batch_size, input_image_size=image_size,
                                           input_type=mg_input_type, num_channels=3, input_name=signature.INPUT_NAME)
    try:
        export_saved_model_lib.export_inference_graph(
            input_type=mg_input_type, batch_size=plan.batch_size, input_image_size=image_size, params=plan.params,
            checkpoint_path=plan.checkpoint, export_dir=staging, export_module=module,
            function_keys={mg_input_type: tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY},
            export_checkpoint_subdir="checkpoint", export_saved_model_subdir="saved_model",
            input_name=signature.INPUT_NAME)
    except AssertionError as e:  # assert_existing_objects_matched: config does not fit checkpoint
        raise EngineError(
            f"{plan.checkpoint}: checkpoint does not match the model of {plan.config_path} "
            f"({str(e).splitlines()[0][:300]}); export with the config the model was trained with"
        ) from e


def _add_config_and_label_map(plan: _ExportPlan, staging: str) -> None:
    io.copy(plan.config_path, os.path.join(staging, "pipeline.yaml"))
    label_map = find_label_map(plan.config_path, plan.params)
    if label_map:
        io.copy(label_map, os.path.join(staging, "label_map.pbtxt"))
    else:
        logger.warning("%s: no label map found (no '# label map:' header line, no label_map.pbtxt beside the "
                       "training records); the export has none", plan.config_path)


def _files_under(root: str) -> List[str]:
    return [os.path.relpath(os.path.join(d, f), root) for d, _, files in io.walk(root) for f in files]


def _publish(staging: str, output_directory: str) -> None:
    """Move each top-level entry of the local ``staging`` folder over its name in the output
    (replacing an earlier export there); uploaded file by file for a URL."""
    for name in io.listdir(staging):
        src, dst = os.path.join(staging, name), io.join(output_directory, name)
        if io.is_url(output_directory):
            if io.isdir(dst):
                io.rmtree(dst)
            for rel in (_files_under(src) if io.isdir(src) else [""]):
                target = io.join(dst, rel) if rel else dst
                io.makedirs(io.dirname(target))
                io.copy(os.path.join(src, rel) if rel else src, target)
            continue
        if io.isdir(dst) and not os.path.islink(dst):
            io.rmtree(dst)
        io.rename(src, dst)


def export(config_path, trained_checkpoint_dir, output_directory, *, input_type: str = "image_tensor",
           checkpoint: Optional[str] = None, batch_size: Optional[int] = 1) -> ExportResult:
    """Export a checkpoint of `trained_checkpoint_dir` as a TFOD2-compatible SavedModel.

    Args:
      config_path: the tfod-seg Model Garden experiment YAML the model was trained with.
      trained_checkpoint_dir: the training `model_dir`.
      output_directory: where `saved_model/`, `checkpoint/`, `pipeline.yaml` and
        `label_map.pbtxt` are written (replacing earlier exports there).
      input_type: `image_tensor` (uint8 [1, H, W, 3]), `encoded_image_string_tensor`
        (string [1], JPEG/PNG bytes) or `tf_example` (string [1], serialized tf.Example with
        `image/encoded`).
      checkpoint: ``None`` (the latest), ``"best"`` (``MODEL_DIR/best/``) or a checkpoint prefix.
      batch_size: the signature's batch dimension: ``1`` (TFOD2's), ``N`` or ``None`` (any).

    Returns:
      An `ExportResult`; its ``saved_model`` is ``output_directory/saved_model``.

    Raises:
      EngineError: no checkpoint in `trained_checkpoint_dir`, or checkpoint/config mismatch.
      ConfigError: bad `input_type` or a config without masks.
    """
    plan = _plan(config_path, trained_checkpoint_dir, output_directory, input_type, checkpoint)
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch_size {batch_size}: expected an integer >= 1 or 'dynamic'")
    plan.batch_size = batch_size
    io.makedirs(plan.output_directory, "--output_directory")
    local = not io.is_url(plan.output_directory)
    staging = tempfile.mkdtemp(prefix=".export-", dir=plan.output_directory if local else None)
    try:
        logger.info("exporting %s (%s) to %s", plan.checkpoint, input_type, plan.output_directory)
        _write_saved_model(plan, staging)
        _add_config_and_label_map(plan, staging)
        _publish(staging, plan.output_directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    saved_model = io.join(plan.output_directory, "saved_model")
    logger.info("SavedModel written to %s", saved_model)
    return ExportResult(engine="garden", output_directory=plan.output_directory, saved_model=saved_model,
                        input_type=input_type, checkpoint=plan.checkpoint, batch_size=batch_size)
