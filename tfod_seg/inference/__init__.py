"""Inference over any SavedModel with the TFOD2 detection signature (or its `.tflite` /
`.onnx` conversions from `tfod-seg export --format`).

Notebook API::

    from tfod_seg.inference import Predictor, predict
    det = Predictor("exported/saved_model").predict("street.jpg")   # -> Detections
    det = predict("exported/saved_model", "street.jpg", min_score=0.5)

`run_inference` (in `tfod_seg.inference.run`) streams a folder through the model and writes
overlays, COCO results, LabelMe JSON and semantic PNGs. TensorFlow loads only when a model
is loaded.
"""

from __future__ import annotations

from tfod_seg.inference.detections import Detections
from tfod_seg.inference.predict import Predictor, load_predictor
from tfod_seg.inference.run import InferenceSummary, run_inference


def predict(model, image, *, min_score: float = 0.0) -> Detections:
    """Run one image through ``model`` (an export directory, a ``.tflite``/``.onnx`` file, or
    a loaded predictor).

    ``image`` is a file path, an ``(H, W, 3)`` / ``(H, W)`` uint8 array, or a PIL image.
    Returns `Detections` with full-image masks, filtered to ``score >= min_score``.
    Loading the model is the slow part; reuse a `Predictor` for many images.
    """
    return load_predictor(model).predict(image, min_score=min_score)


__all__ = ["Detections", "InferenceSummary", "Predictor", "load_predictor", "predict", "run_inference"]
