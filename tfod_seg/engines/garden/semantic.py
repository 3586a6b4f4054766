"""The semantic-segmentation (scene model) task of the garden engine: export.

Training and evaluation of a Model Garden ``SemanticSegmentationTask`` experiment (the
``pipelines/garden_deeplab*.yaml`` templates) go through the same `train.train` /
`evaluate.evaluate` as Mask R-CNN (Model Garden's task factory picks the task; evaluation
reports ``mean_iou`` and ``iou/<class id>``). Export differs: the TFOD2 detection signature
does not apply, so `export` writes Model Garden's own segmentation SavedModel
(`official.vision.serving.semantic_segmentation.SegmentationModule` through
`export_saved_model_lib.export_inference_graph`): signature ``serving_default``, input
``inputs`` uint8 ``[1, H, W, 3]``, output ``logits`` ``[1, H, W, num_classes]`` at the input
image's size (``task.export_config.rescale_output``). Beside it: ``semantic.json`` (what
`tfod_seg.inference.semantic` reads: classes, input size), ``pipeline.yaml`` and
``label_map.pbtxt`` (ids 1..N; 0 is the background).
"""

from __future__ import annotations

import logging
import tempfile

from tfod_seg import io
from tfod_seg.config.garden import load_experiment
from tfod_seg.engines.base import ExportOptions, ExportResult
from tfod_seg.engines.garden.export import choose_checkpoint, find_label_map
from tfod_seg.errors import ConfigError, EngineError
from tfod_seg.labelmap import read_label_map

logger = logging.getLogger(__name__)

MARKER = "semantic.json"
INPUT_NAME = "inputs"


def is_semantic(params) -> bool:
    """True for a Model Garden semantic-segmentation experiment."""
    return type(params.task).__name__ == "SemanticSegmentationTask"


def is_semantic_config(config_path) -> bool:
    """True when ``config_path`` is a semantic-segmentation experiment YAML (a TFOD2 config: False)."""
    path = io.check_path(config_path, "config")
    if not path.lower().endswith((".yaml", ".yml")):
        return False
    return is_semantic(load_experiment(path)[1])


def _classes(label_map_path, num_classes: int) -> dict:
    names = {0: "background"}
    if label_map_path:
        names.update({item.id: item.name for item in read_label_map(label_map_path, allow_gaps=True)})
    for i in range(num_classes):
        names.setdefault(i, f"class_{i}")
    return {str(k): v for k, v in sorted(names.items()) if k < num_classes}


def _write(params, checkpoint: str, staging: str) -> None:
    import tensorflow as tf
    from official.vision.serving import export_saved_model_lib

    size = [int(v) for v in params.task.model.input_size[:2]]
    params.override({"task": {"export_config": {"rescale_output": True}}}, is_strict=True)
    try:
        export_saved_model_lib.export_inference_graph(
            input_type="image_tensor", batch_size=1, input_image_size=size, params=params,
            checkpoint_path=checkpoint, export_dir=staging, export_checkpoint_subdir="checkpoint",
            export_saved_model_subdir="saved_model",
            function_keys={"image_tensor": tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY})
    except AssertionError as e:  # the checkpoint is not of this model
        raise EngineError(f"{checkpoint}: checkpoint does not match the model of the config "
                          f"({str(e).splitlines()[0][:300]}); export with the config the model was trained with") from e


def export(options: ExportOptions) -> ExportResult:
    """Export the scene model of ``options.config_path`` (see the module docstring)."""
    if options.input_type != "image_tensor" or options.format != "saved_model" or options.batch_size != 1:
        raise ConfigError("a semantic-segmentation export is a SavedModel taking uint8 [1, H, W, 3] images: use "
                          "--input_type image_tensor, --format saved_model, --batch_size 1")
    config_path = io.check_path(options.config_path, "config")
    output = io.abspath(io.check_path(options.output_directory, "--output_directory"))
    checkpoint = choose_checkpoint(io.check_path(options.trained_checkpoint_dir, "--trained_checkpoint_dir"),
                                   options.checkpoint)
    _, params = load_experiment(config_path)
    label_map = find_label_map(config_path, params)
    staging = tempfile.mkdtemp(prefix="tfod-seg-semantic-export-")
    try:
        _write(params, checkpoint, staging)
        io.copy(config_path, io.join(staging, "pipeline.yaml"))
        if label_map:
            io.copy(label_map, io.join(staging, "label_map.pbtxt"))
        io.atomic_write_json(io.join(staging, MARKER), {
            "task": "semantic", "input_name": INPUT_NAME, "output": "logits",
            "input_size": [int(v) for v in params.task.model.input_size[:2]],
            "classes": _classes(label_map, int(params.task.model.num_classes)), "checkpoint": checkpoint})
        _publish(staging, output)
    finally:
        io.rmtree(staging)
    logger.info("exported scene model %s to %s", checkpoint, output)
    return ExportResult(engine="garden", output_directory=output, saved_model=io.join(output, "saved_model"),
                        input_type="image_tensor", checkpoint=checkpoint, format="saved_model",
                        model_path=io.join(output, "saved_model"), batch_size=1)


def _publish(staging: str, output: str) -> None:
    """Copy the staged export to ``output`` (local or URL), the marker last: a reader sees
    ``semantic.json`` only once the SavedModel is complete."""
    io.makedirs(output, "--output_directory")
    for dirpath, _dirs, files in io.walk(staging):
        rel = io.relpath(dirpath, staging)
        dest_dir = output if rel == "." else io.join(output, rel)
        io.makedirs(dest_dir)
        for name in files:
            if rel == "." and name == MARKER:
                continue
            io.copy(io.join(dirpath, name), io.join(dest_dir, name))
    io.copy(io.join(staging, MARKER), io.join(output, MARKER))


__all__ = ["MARKER", "export", "is_semantic", "is_semantic_config"]
