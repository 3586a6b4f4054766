"""Inference over any SavedModel with the TFOD2 detection signature.

Notebook API::

    from tfod_seg.inference import Predictor, predict
    det = Predictor("exported/saved_model").predict("street.jpg")   # -> Detections
    det = predict("exported/saved_model", "street.jpg", min_score=0.5)

`run_inference` (in `tfod_seg.inference.run`) streams a folder through the model and writes
overlays, COCO results, LabelMe JSON and semantic PNGs. Heavy modules (TensorFlow) load only
when a `Predictor` is built.
"""

from __future__ import annotations

from tfod_seg.inference.detections import Detections


def __getattr__(name):  # lazy: importing the package must not import TensorFlow
    if name == "Predictor":
        from tfod_seg.inference.predict import Predictor

        return Predictor
    if name == "run_inference":
        from tfod_seg.inference.run import run_inference

        return run_inference
    raise AttributeError(name)


def predict(model, image, *, min_score: float = 0.0) -> Detections:
    """Run one image through ``model`` (an export directory or a `Predictor`).

    ``image`` is a file path, an ``(H, W, 3)`` / ``(H, W)`` uint8 array, or a PIL image.
    Returns `Detections` with full-image masks, filtered to ``score >= min_score``.
    Building a `Predictor` loads the SavedModel; reuse one for many images.
    """
    from tfod_seg.inference.predict import Predictor

    predictor = model if isinstance(model, Predictor) else Predictor(model)
    return predictor.predict(image, min_score=min_score)


__all__ = ["Detections", "Predictor", "predict", "run_inference"]
