"""Export a trained Model Garden Mask R-CNN to TFLite or ONNX (`tfod-seg export --format`).

The converted graph is the network only, at a fixed input size and a fixed number of
detections (the config's ``detection_generator.max_num_detections``); preprocessing
(letterbox, normalisation) and post-processing (box normalisation, mask pasting) run in the
package's Python (`tfod_seg.inference.edge`), as documented in `tfod_seg.engines.edge_spec`.
Inside the graph everything is Model Garden's own code: `factory.build_maskrcnn` with the
trained checkpoint, the anchors of `anchor.build_anchor_generator`, and ``model.call`` in
inference mode. Mask R-CNN's two NMS stages use Model Garden's ``nms_version`` ``v2``
(`official.vision.ops.nms`, plain TensorFlow ops in a while loop) or ``v1``
(``NonMaxSuppressionV4``/``V5``): both are TFLite built-ins and ONNX ``NonMaxSuppression``,
unlike ``batched`` (``CombinedNonMaxSuppression``).

* TFLite: ``tf.lite.TFLiteConverter.from_concrete_functions`` with built-in ops only
  (``TFLITE_BUILTINS``); ``quantize`` ``float16`` stores float16 weights, ``dynamic`` int8
  weights with float activations (dynamic-range quantisation).
* ONNX: ``tf2onnx.convert.from_function`` (opset 17); the batch dimension is dynamic when
  ``batch_size`` is None.

Files written to ``output_directory``: ``model.tflite`` or ``model.onnx``, ``model.json`` (the
`EdgeSpec`), ``label_map.pbtxt`` when found, ``pipeline.yaml``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Optional

from tfod_seg import io
from tfod_seg.config.garden import load_experiment
from tfod_seg.engines.base import ExportResult
from tfod_seg.engines.edge_spec import FORMATS, QUANTIZE, EdgeSpec, spec_path
from tfod_seg.engines.garden import export as saved_model_export
from tfod_seg.errors import ConfigError, EngineError

log = logging.getLogger(__name__)

ONNX_OPSET = 17


@dataclasses.dataclass
class EdgeExportResult:
    """Where an edge export went and what it holds."""

    format: str
    model_path: str
    spec_path: str
    size_bytes: int
    spec: EdgeSpec

    def to_json(self):
        return {"format": self.format, "model_path": self.model_path, "spec_path": self.spec_path,
                "size_bytes": self.size_bytes, "spec": self.spec.to_json()}


def _sizes(params):
    from official.vision.ops import preprocess_ops

    model_cfg = params.task.model
    desired = [int(x) for x in model_cfg.input_size[:2]]
    padded = desired
    if params.task.train_data.parser.pad:
        padded = [int(x) for x in preprocess_ops.compute_padded_size(desired, 2 ** model_cfg.max_level)]
    return desired, padded


def build_edge_function(params, checkpoint: str, batch_size: Optional[int]):
    """A `tf.Module` whose ``edge`` is the `tf.function` ``(images, image_shape) -> outputs`` of
    the trained Mask R-CNN (see `tfod_seg.engines.edge_spec`), and its `EdgeSpec` (format
    left empty)."""
    import tensorflow as tf
    import tf_keras
    from official.vision.modeling import factory
    from official.vision.ops import anchor, preprocess_ops

    model_cfg = params.task.model
    desired, padded = _sizes(params)
    model = factory.build_maskrcnn(input_specs=tf_keras.layers.InputSpec(shape=[batch_size, *padded, 3]),
                                   model_config=model_cfg)
    status = tf.train.Checkpoint(model=model).read(checkpoint)
    try:
        status.expect_partial().assert_existing_objects_matched()
    except AssertionError as e:
        raise EngineError(f"{checkpoint}: checkpoint does not match the model of the config "
                          f"({str(e).splitlines()[0][:300]}); export with the config the model was trained with") from e
    anchors = anchor.build_anchor_generator(
        min_level=model_cfg.min_level, max_level=model_cfg.max_level, num_scales=model_cfg.anchor.num_scales,
        aspect_ratios=model_cfg.anchor.aspect_ratios, anchor_size=model_cfg.anchor.anchor_size)(image_size=padded)
    # NumPy here, graph constants inside the function: a captured eager tensor would become an
    # extra graph input in the ONNX conversion.
    anchors = {k: v.numpy() if hasattr(v, "numpy") else v for k, v in anchors.items()}

    @tf.function(input_signature=[tf.TensorSpec([batch_size, *padded, 3], tf.float32, name="images"),
                                  tf.TensorSpec([batch_size, 2], tf.float32, name="image_shape")])
    def edge(images, image_shape):
        anchor_boxes = {k: tf.constant(v) for k, v in anchors.items()}
        out = model.call(images=images, image_shape=image_shape, anchor_boxes=anchor_boxes, training=False)
        return {
            "detection_boxes": tf.identity(out["detection_boxes"], name="detection_boxes"),
            "detection_scores": tf.identity(out["detection_scores"], name="detection_scores"),
            "detection_classes": tf.cast(out["detection_classes"], tf.float32, name="detection_classes"),
            "num_detections": tf.cast(out["num_detections"], tf.float32, name="num_detections"),
            "detection_masks": tf.identity(out["detection_masks"], name="detection_masks"),
        }

    holder = tf.Module()  # the converter's trackable object: keeps the variables and gives a signature
    holder.model, holder.edge = model, edge
    spec = EdgeSpec(format="", batch_size=batch_size, input_size=tuple(padded), desired_size=tuple(desired),
                    mean_rgb=tuple(float(v) for v in preprocess_ops.MEAN_RGB),
                    stddev_rgb=tuple(float(v) for v in preprocess_ops.STDDEV_RGB),
                    max_detections=int(model_cfg.detection_generator.max_num_detections),
                    mask_size=int(edge.get_concrete_function().structured_outputs["detection_masks"].shape[-1]),
                    versions={"tensorflow": tf.__version__})
    return holder, spec


def convert_tflite(holder, quantize: str = "none") -> bytes:
    """TFLite flatbuffer of ``holder.edge`` with built-in ops only (no Flex/select ops) and a
    ``serving_default`` signature naming the inputs and outputs."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([holder.edge.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        return converter.convert()
    except Exception as e:  # ConverterError: name the ops
        raise EngineError(f"TFLite conversion failed with built-in ops only: {str(e).strip()[-1500:]}") from e


def _positive_gather_axes(graph_def, graph) -> int:
    """Rewrite ``GatherV2`` nodes with ``batch_dims`` and a negative constant axis to the same
    positive axis (in place); returns how many. tf2onnx 1.17 does not normalise the axis in
    that case and emits a Transpose with a repeated ``perm`` that onnxruntime refuses (Model
    Garden's mask head picks each ROI's class with ``tf.gather(..., axis=-1, batch_dims=2)``)."""
    import tensorflow as tf

    consts = {n.name: n for n in graph_def.node if n.op == "Const"}
    fixed = 0
    for node in list(graph_def.node):
        if node.op != "GatherV2" or not node.attr["batch_dims"].i:
            continue
        axis_node = consts.get(node.input[2].split(":")[0])
        if axis_node is None:
            continue
        axis = int(tf.make_ndarray(axis_node.attr["value"].tensor))
        if axis >= 0:
            continue
        data = node.input[0] if ":" in node.input[0] else node.input[0] + ":0"
        rank = graph.get_tensor_by_name(data).shape.rank
        new = graph_def.node.add()
        new.CopyFrom(axis_node)
        new.name = node.name + "/positive_axis"
        new.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(axis + rank, dtype=axis_node.attr["dtype"].type))
        node.input[2] = new.name
        fixed += 1
    return fixed


def convert_onnx(holder) -> bytes:
    """ONNX model of ``holder.edge`` (tf2onnx, opset `ONNX_OPSET`): the function is frozen,
    negative ``GatherV2`` axes with batch dims are made positive (`_positive_gather_axes`),
    then converted with the outputs named as in `tfod_seg.engines.edge_spec`."""
    import tensorflow as tf
    import tf2onnx
    from tf2onnx import tf_loader

    cf = holder.edge.get_concrete_function()
    inputs = [t.name for t in cf.inputs if t.dtype != tf.resource]
    outputs = [t.name for t in cf.outputs if t.dtype != tf.resource]
    try:
        frozen = tf_loader.from_function(cf, inputs, outputs)
        log.info("ONNX: %d GatherV2 axes made positive", _positive_gather_axes(frozen, cf.graph))
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen, name="tfod_seg_maskrcnn", input_names=inputs, output_names=outputs, opset=ONNX_OPSET,
            tensors_to_rename=tf2onnx.convert.tensor_names_from_structed(cf, inputs, outputs))
    except Exception as e:  # noqa: BLE001 - report the converter's reason
        raise EngineError(f"ONNX conversion failed (tf2onnx {tf2onnx.__version__}): {str(e).strip()[-1500:]}") from e
    return proto.SerializeToString()


def _check(fmt: str, quantize: str, batch_size: Optional[int]) -> None:
    if fmt not in ("tflite", "onnx"):
        raise ConfigError(f"--format {fmt}: expected saved_model, tflite or onnx")
    if quantize not in QUANTIZE[fmt]:
        raise ConfigError(f"--quantize {quantize}: not available for --format {fmt}; expected one of {', '.join(QUANTIZE[fmt])}")
    if batch_size is None and fmt == "tflite":
        raise ConfigError("--batch_size dynamic: TFLite models have a fixed batch; give a number (e.g. 1 or 8)")
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch_size {batch_size}: expected an integer >= 1 or 'dynamic'")


def export_edge(config_path, trained_checkpoint_dir, output_directory, *, fmt: str, quantize: str = "none",
                batch_size: Optional[int] = 1, checkpoint: Optional[str] = None) -> EdgeExportResult:
    """Convert a checkpoint of ``trained_checkpoint_dir`` to ``fmt`` (``tflite`` or ``onnx``);
    write ``model.<fmt>``, ``model.json`` and the label map to ``output_directory``."""
    _check(fmt, quantize, batch_size)
    config_path = io.check_path(config_path, "config")
    ckpt = saved_model_export.choose_checkpoint(io.check_path(trained_checkpoint_dir, "--trained_checkpoint_dir"),
                                                checkpoint)
    _, params = load_experiment(config_path)
    if not getattr(params.task.model, "include_mask", False):
        raise ConfigError(f"{config_path}: task.model.include_mask is false; the edge export needs a Mask R-CNN with masks")
    if float(params.task.model.outer_boxes_scale) != 1.0:
        raise ConfigError(f"{config_path}: task.model.outer_boxes_scale is {params.task.model.outer_boxes_scale}; "
                          "the edge export supports 1.0 (masks relative to the detection boxes)")
    if params.task.model.detection_generator.nms_version == "batched":
        log.info("detection_generator.nms_version batched (CombinedNonMaxSuppression) -> v2 for the edge graph")
        params.task.model.detection_generator.nms_version = "v2"
    fn, spec = build_edge_function(params, ckpt, batch_size)
    spec.format, spec.quantize = fmt, quantize
    data = convert_tflite(fn, quantize) if fmt == "tflite" else convert_onnx(fn)
    if fmt == "onnx":
        import onnxruntime
        import tf2onnx

        spec.versions.update(tf2onnx=tf2onnx.__version__, onnxruntime=onnxruntime.__version__, opset=str(ONNX_OPSET))
    out = io.makedirs(io.check_path(output_directory, "--output_directory"), "--output_directory")
    model_path = io.join(out, f"model.{fmt}")
    io.atomic_write_bytes(model_path, data)
    io.atomic_write_text(spec_path(model_path), spec.dumps())
    io.copy(config_path, io.join(out, "pipeline.yaml"))
    label_map = saved_model_export.find_label_map(config_path, params)
    if label_map:
        io.copy(label_map, io.join(out, "label_map.pbtxt"))
    log.info("%s model written to %s (%d bytes)", fmt, model_path, len(data))
    return EdgeExportResult(format=fmt, model_path=model_path, spec_path=spec_path(model_path), size_bytes=len(data),
                            spec=spec)


def export_result(options) -> ExportResult:
    """`GardenEngine.export` for the deployment variants of `ExportOptions`: a SavedModel with
    ``batch_size`` N or None (dynamic), or ``format`` ``tflite`` / ``onnx``."""
    if options.format not in FORMATS:
        raise ConfigError(f"--format {options.format}: unknown; expected one of {', '.join(FORMATS)}")
    checkpoint = getattr(options, "checkpoint", None)
    if options.format == "saved_model":
        if options.quantize != "none":
            raise ConfigError(f"--quantize {options.quantize}: only for --format tflite")
        return saved_model_export.export(options.config_path, options.trained_checkpoint_dir, options.output_directory,
                                         input_type=options.input_type, checkpoint=checkpoint,
                                         batch_size=options.batch_size)
    if options.input_type != "image_tensor":
        raise ConfigError(f"--input_type {options.input_type}: --format {options.format} takes images "
                          "(image_tensor); decoding JPEG/PNG or tf.Example stays outside the edge model")
    result = export_edge(options.config_path, options.trained_checkpoint_dir, options.output_directory,
                         fmt=options.format, quantize=options.quantize, batch_size=options.batch_size,
                         checkpoint=checkpoint)
    return ExportResult(engine="garden", output_directory=io.dirname(result.model_path), saved_model="",
                        input_type="image_tensor", checkpoint=checkpoint, format=options.format,
                        model_path=result.model_path, batch_size=options.batch_size)


__all__ = ["EdgeExportResult", "export_result", "build_edge_function", "convert_tflite", "convert_onnx", "export_edge"]
