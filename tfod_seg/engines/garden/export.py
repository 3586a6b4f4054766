"""Export a trained Model Garden Mask R-CNN as a SavedModel with TFOD2's `serving_default`.

Layout written (TFOD2 `exporter_main_v2` layout, plus the label map)::

    OUTPUT_DIRECTORY/
      saved_model/        SavedModel; signature `serving_default`, input `input_tensor`
      checkpoint/         the exported weights (tf.train.Checkpoint of the model)
      pipeline.yaml       the experiment YAML the model was trained with (copied as-is)
      label_map.pbtxt     the label map of the training records (when it can be found)
      params.yaml         the fully resolved config, as Model Garden writes it

The outputs of `serving_default` are documented in `tfod_seg.engines.garden.signature`.
The saving itself is Model Garden's `export_saved_model_lib.export_inference_graph`, given
the `TFODDetectionModule` wrapper.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from typing import Optional

from tfod_seg.errors import ConfigError, EngineError
from tfod_seg.records.metadata import find_label_map as records_label_map

logger = logging.getLogger(__name__)

INPUT_TYPES = ("image_tensor", "encoded_image_string_tensor", "tf_example")

# `tfod-seg config` writes "# label map: /abs/label_map.pbtxt (3 classes: a, b, c)" in the header.
_LABEL_MAP_HEADER = re.compile(r"^#\s*(?:tfod-seg\s+)?label[ _]map:\s*(\S.*?)(?:\s+\(\d+ classes?\b.*\))?\s*$",
                               re.MULTILINE)


def latest_checkpoint(trained_checkpoint_dir: str) -> str:
    """The newest checkpoint prefix in `trained_checkpoint_dir`, or a clear `EngineError`."""
    import tensorflow as tf

    d = os.fspath(trained_checkpoint_dir)
    if not os.path.isdir(d):
        raise EngineError(f"{d}: trained checkpoint directory does not exist; expected the --model_dir of `tfod-seg train`")
    ckpt = tf.train.latest_checkpoint(d)
    if not ckpt:
        raise EngineError(
            f"{d}: no checkpoint found (no 'checkpoint' index file with ckpt-N.index files); "
            "expected the --model_dir of a `tfod-seg train` run that saved at least one checkpoint"
        )
    return ckpt


def find_label_map(config_path: str, params=None) -> Optional[str]:
    """Locate the label map belonging to a tfod-seg experiment YAML.

    Looked up in order: the ``# label map: PATH (N classes: ...)`` header line that
    `tfod-seg config` writes (or ``# tfod-seg label_map: PATH``); the
    ``report.json`` written by `tfod-seg convert` beside the training records (its
    ``label_map`` key); a ``label_map.pbtxt`` beside the training records
    (`task.train_data.input_path`). Relative paths are taken relative to the YAML's folder.
    """
    base = os.path.dirname(os.path.abspath(config_path))

    def resolve(p: str) -> str:
        p = os.path.expanduser(p)
        return p if os.path.isabs(p) else os.path.join(base, p)

    with open(config_path, encoding="utf-8") as f:
        m = _LABEL_MAP_HEADER.search(f.read())
    if m and os.path.isfile(resolve(m.group(1))):
        return resolve(m.group(1))
    if params is None:
        return None
    return records_label_map(params.task.train_data.input_path, base)


def export(config_path, trained_checkpoint_dir, output_directory, *, input_type: str = "image_tensor") -> str:
    """Export the latest checkpoint of `trained_checkpoint_dir` as a TFOD2-compatible SavedModel.

    Args:
      config_path: the tfod-seg Model Garden experiment YAML the model was trained with.
      trained_checkpoint_dir: the training `model_dir`; its latest checkpoint is exported.
      output_directory: where `saved_model/`, `checkpoint/`, `pipeline.yaml` and
        `label_map.pbtxt` are written (replacing earlier exports there).
      input_type: `image_tensor` (uint8 [1, H, W, 3]), `encoded_image_string_tensor`
        (string [1], JPEG/PNG bytes) or `tf_example` (string [1], serialized tf.Example with
        `image/encoded`).

    Returns:
      The SavedModel directory, ``output_directory/saved_model``.

    Raises:
      EngineError: no checkpoint in `trained_checkpoint_dir`, or checkpoint/config mismatch.
      ConfigError: bad `input_type` or a config without masks.
    """
    if input_type not in INPUT_TYPES:
        raise ConfigError(f"--input_type: got '{input_type}', expected one of {', '.join(INPUT_TYPES)}")
    config_path = os.fspath(config_path)
    output_directory = os.path.abspath(os.fspath(output_directory))
    ckpt = latest_checkpoint(trained_checkpoint_dir)

    from tfod_seg.config.garden import load_experiment

    _, params = load_experiment(config_path)
    model_cfg = params.task.model
    if not getattr(model_cfg, "include_mask", False):
        raise ConfigError(f"{config_path}: task.model.include_mask is false; the TFOD2 signature needs a Mask R-CNN with masks")
    if not model_cfg.detection_generator.apply_nms:
        raise ConfigError(f"{config_path}: task.model.detection_generator.apply_nms is false; expected true for export")

    import tensorflow as tf
    from official.vision.serving import export_saved_model_lib

    from tfod_seg.engines.garden import signature

    mg_input_type = signature.INPUT_TYPES[input_type]
    image_size = [int(x) for x in model_cfg.input_size[:2]]
    module = signature.TFODDetectionModule(
        params=params,
        batch_size=1,
        input_image_size=image_size,
        input_type=mg_input_type,
        num_channels=3,
        input_name=signature.INPUT_NAME,
    )
    os.makedirs(output_directory, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=output_directory)
    try:
        logger.info("exporting %s (%s) to %s", ckpt, input_type, output_directory)
        try:
            export_saved_model_lib.export_inference_graph(
                input_type=mg_input_type,
                batch_size=1,
                input_image_size=image_size,
                params=params,
                checkpoint_path=ckpt,
                export_dir=staging,
                export_module=module,
                function_keys={mg_input_type: tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY},
                export_checkpoint_subdir="checkpoint",
                export_saved_model_subdir="saved_model",
                input_name=signature.INPUT_NAME,
            )
        except AssertionError as e:  # assert_existing_objects_matched: config does not fit checkpoint
            raise EngineError(
                f"{ckpt}: checkpoint does not match the model of {config_path} ({str(e).splitlines()[0][:300]}); "
                "export with the config the model was trained with"
            ) from e
        shutil.copyfile(config_path, os.path.join(staging, "pipeline.yaml"))
        label_map = find_label_map(config_path, params)
        if label_map:
            shutil.copyfile(label_map, os.path.join(staging, "label_map.pbtxt"))
        else:
            logger.warning(
                "%s: no label map found (no '# label map:' header line, no label_map.pbtxt beside the "
                "training records); the export has none", config_path)
        for name in sorted(os.listdir(staging)):
            src, dst = os.path.join(staging, name), os.path.join(output_directory, name)
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            os.replace(src, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    saved_model = os.path.join(output_directory, "saved_model")
    logger.info("SavedModel written to %s", saved_model)
    return saved_model
