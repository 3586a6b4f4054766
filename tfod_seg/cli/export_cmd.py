"""`tfod-seg export`: a trained checkpoint → SavedModel with TFOD2's detection signature."""

from __future__ import annotations

NAME = "export"
HELP = "export the latest checkpoint as a SavedModel with the TFOD2 serving signature"
DESCRIPTION = """\
Export the latest checkpoint of a training run as a SavedModel whose `serving_default`
signature is the one TFOD2's exporter_main_v2 writes: input `input_tensor`, outputs
num_detections, detection_boxes (normalised [ymin, xmin, ymax, xmax]), detection_classes
(float label-map ids from 1), detection_scores, detection_masks (box-relative, [0, 1]) and
detection_masks_reframed (uint8 full-image masks). Code written for TFOD2 exports works
unchanged.

Writes OUTPUT_DIRECTORY/saved_model, OUTPUT_DIRECTORY/checkpoint, and copies the config
(pipeline.yaml, or pipeline.config for the tfod engine) and label_map.pbtxt beside them.
The engine follows from the config: .yaml = Model Garden (garden), .config = TFOD2 (tfod)."""
EPILOG = """\
examples:
  tfod-seg export --pipeline_config_path work/pipeline.yaml \\
      --trained_checkpoint_dir work/model --output_directory work/exported
  tfod-seg export --pipeline_config_path work/pipeline.yaml \\
      --trained_checkpoint_dir work/model --output_directory work/exported_jpeg \\
      --input_type encoded_image_string_tensor
  tfod-seg export --pipeline_config_path work/pipeline.yaml \\
      --trained_checkpoint_dir work/model --output_directory work/exported_best \\
      --checkpoint best                                   # the best checkpoint of train --eval_every
  tfod-seg export --pipeline_config_path work/pipeline.config \\
      --trained_checkpoint_dir work/model --output_directory work/exported   # TFOD2 engine
  tfod-seg export --pipeline_config_path work/pipeline.yaml \\
      --trained_checkpoint_dir work/model --output_directory work/exported_b8 --batch_size 8
  tfod-seg export --pipeline_config_path work/pipeline.yaml \\
      --trained_checkpoint_dir work/model --output_directory work/tflite --format tflite --quantize float16
  tfod-seg export --pipeline_config_path work/pipeline.yaml \\
      --trained_checkpoint_dir work/model --output_directory work/onnx --format onnx --batch_size dynamic

then, in Python (the usual TFOD2 snippet):
  detect_fn = tf.saved_model.load("work/exported/saved_model")
  out = detect_fn(tf.constant(image[None]))   # uint8 [1, H, W, 3]; or
  out = detect_fn.signatures["serving_default"](input_tensor=tf.constant(image[None]))
  n = int(out["num_detections"][0]); boxes = out["detection_boxes"][0, :n]"""

INPUT_TYPES = ("image_tensor", "encoded_image_string_tensor", "tf_example")


def add_arguments(parser) -> None:
    from tfod_seg.cli._engine import add_engine_flag, add_tfod_python

    parser.add_argument("--pipeline_config_path", required=True, metavar="CFG",
                        help="the config the model was trained with (.yaml Model Garden, .config TFOD2)")
    parser.add_argument("--trained_checkpoint_dir", required=True, metavar="DIR",
                        help="the training model_dir; its latest checkpoint is exported")
    parser.add_argument("--output_directory", required=True, metavar="DIR",
                        help="where saved_model/, checkpoint/, the config and label_map.pbtxt are written")
    parser.add_argument("--input_type", default="image_tensor", choices=INPUT_TYPES,
                        help="image_tensor: uint8 [1,H,W,3]; encoded_image_string_tensor: JPEG/PNG bytes [1]; "
                             "tf_example: serialized tf.Example [1]")
    parser.add_argument("--checkpoint", default=None, metavar="best|PREFIX",
                        help="garden: export MODEL_DIR/best/ (kept by train --eval_every) or this checkpoint "
                             "prefix instead of the latest checkpoint")
    parser.add_argument("--format", default="saved_model", choices=("saved_model", "tflite", "onnx"),
                        help="garden: saved_model (TFOD2 signature); tflite (TFLite built-in ops) or onnx (tf2onnx): "
                             "model.tflite / model.onnx + model.json, fixed input size, run by infer/score")
    parser.add_argument("--quantize", default="none", choices=("none", "float16", "dynamic"),
                        help="--format tflite: float16 weights, or dynamic-range int8 weights (default: float32)")
    parser.add_argument("--batch_size", default="1", type=_batch_size, metavar="N|dynamic",
                        help="garden: images per call of the exported model (default 1, as TFOD2); 'dynamic' = "
                             "any (saved_model, onnx); infer/score batch same-sized images by it")
    add_engine_flag(parser)
    parser.add_argument("--config_override", default=None, metavar="TEXT",
                        help="tfod engine only: pipeline_pb2 text merged into the config (TFOD2's flag)")
    add_tfod_python(parser)


def _batch_size(text: str):
    import argparse

    if text.strip().lower() in ("dynamic", "none"):
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}': expected an integer >= 1 or 'dynamic'")
    return value


def options_from_args(args):
    from tfod_seg.engines.base import ExportOptions

    return ExportOptions(config_path=args.pipeline_config_path, format=args.format, quantize=args.quantize,
                         batch_size=args.batch_size, trained_checkpoint_dir=args.trained_checkpoint_dir,
                         output_directory=args.output_directory, input_type=args.input_type,
                         checkpoint=args.checkpoint, config_override=args.config_override, tfod_python=args.tfod_python)


def run(args) -> int:
    from tfod_seg.cli._engine import prepare

    options = options_from_args(args)
    engine = prepare("export", args, options)
    result = engine.export(options)
    batch = "dynamic" if result.batch_size is None else result.batch_size
    if result.format != "saved_model":
        print(f"{result.format}: {result.model_path} (batch {batch}; infer/score take it as --model)")
        return 0
    print(f"SavedModel: {result.saved_model} (signature serving_default, input input_tensor, {result.input_type}, "
          f"batch {batch})")
    return 0
