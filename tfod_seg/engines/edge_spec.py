"""`EdgeSpec`: what a `.tflite` / `.onnx` Mask R-CNN from `tfod-seg export --format` expects
and returns, written beside it as ``<model>.json`` and read by `tfod_seg.inference.edge`.

The edge graph holds only the network (backbone, FPN, RPN with its NMS, ROI align, box and
mask heads, detection NMS) at a fixed input size and a fixed number of detections. What
TFLite and ONNX runtimes do badly or not at all stays in the package's Python:

* preprocessing (``letterbox``): the uint8 RGB image is scaled to fit ``desired_size``
  keeping its aspect ratio (bilinear, half-pixel centres, the scaled size rounded), normalised
  as ``(pixel - mean_rgb) / stddev_rgb`` and zero-padded at the bottom and right to
  ``input_size`` (Model Garden's `preprocess_ops.resize_and_crop_image` at scale 1);
* post-processing: boxes come out in pixels of the scaled image, ``[ymin, xmin, ymax, xmax]``;
  dividing by the scale gives original pixels, then normalised and clipped to ``[0, 1]`` as
  the SavedModel's ``detection_boxes``; ``detection_masks`` (probabilities over each box,
  ``mask_size`` square) are pasted on the full image with the SavedModel's convention
  (`tfod_seg.inference.paste.paste_masks_centred`).

Graph inputs: ``images`` float32 ``[batch, H, W, 3]`` (preprocessed as above) and
``image_shape`` float32 ``[batch, 2]`` (scaled height and width of each image, for clipping).
Graph outputs: ``detection_boxes`` ``[batch, max_detections, 4]``, ``detection_scores`` and
``detection_classes`` ``[batch, max_detections]`` (classes are label-map ids as floats),
``num_detections`` ``[batch]`` and ``detection_masks`` ``[batch, max_detections, m, m]``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Dict, List, Optional, Tuple

from tfod_seg.errors import UserError

from tfod_seg.errors import UserError

FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZE = {"tflite": ("none", "float16", "dynamic"), "onnx": ("none",), "saved_model": ("none",)}
INPUT_NAMES = ("images", "image_shape")
OUTPUT_NAMES = ("detection_boxes", "detection_scores", "detection_classes", "num_detections", "detection_masks")


@dataclasses.dataclass
class EdgeSpec:
    """Input geometry and output layout of one exported edge model."""

    format: str  # "tflite" or "onnx"
    batch_size: Optional[int]  # fixed batch, or None for any (ONNX with a dynamic batch)
    input_size: Tuple[int, int]  # padded [H, W] of the graph input
    desired_size: Tuple[int, int]  # the box an image is scaled to fit before padding
    mean_rgb: Tuple[float, float, float]
    stddev_rgb: Tuple[float, float, float]
    max_detections: int
    mask_size: int
    quantize: str = "none"
    input_names: List[str] = dataclasses.field(default_factory=lambda: list(INPUT_NAMES))
    output_names: List[str] = dataclasses.field(default_factory=lambda: list(OUTPUT_NAMES))
    versions: Dict[str, str] = dataclasses.field(default_factory=dict)  # tensorflow, tf2onnx, ...

    def to_json(self) -> Dict:
        return dataclasses.asdict(self)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def from_json(cls, doc: Dict, source: str = "edge spec") -> "EdgeSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in doc]
        if not isinstance(doc, dict) or missing:
            raise UserError(f"{source}: not an edge model description (missing {missing or 'everything'}); "
                            "expected the JSON file `tfod-seg export --format` writes beside the model")
        kwargs = {k: v for k, v in doc.items() if k in names}
        for key in ("input_size", "desired_size", "mean_rgb", "stddev_rgb"):
            kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


def spec_path(model_path: str) -> str:
    """``model.tflite`` → ``model.json`` (the spec beside the model file)."""
    stem = model_path.rsplit(".", 1)[0] if "." in model_path.rsplit("/", 1)[-1] else model_path
    return stem + ".json"


__all__ = ["EdgeSpec", "FORMATS", "QUANTIZE", "INPUT_NAMES", "OUTPUT_NAMES", "spec_path"]
