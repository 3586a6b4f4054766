"""Scene (semantic-segmentation) exports: load one, predict per-pixel class maps, write them.

A scene export is what `tfod-seg export` writes for a ``garden_deeplab*`` config
(`tfod_seg.engines.garden.semantic`): a SavedModel whose ``serving_default`` takes uint8
``[1, H, W, 3]`` and returns ``logits`` ``[1, H, W, C]``, plus ``semantic.json`` (classes: id
→ name, 0 = background). `run_semantic_inference` writes, per image, ``semantic/<stem>.png``
(the class id of each pixel, uint8) and ``overlays/<stem>.png`` (classes tinted), and
``summary.json`` (pixel share per class).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Dict, List, Optional

import numpy as np

from tfod_seg import io
from tfod_seg.errors import UserError
from tfod_seg.inference.draw import instance_colors
from tfod_seg.inference.formats import write_png
from tfod_seg.inference.predict import ModelError, load_image, resolve_export_dir

MARKER = "semantic.json"


def is_semantic_export(model) -> bool:
    """True when ``model`` is an export directory holding ``semantic.json``."""
    path = io.check_path(model, "model")
    return io.isdir(path) and io.isfile(io.join(path, MARKER))


class SemanticPredictor:
    """A loaded scene export: ``predict(image) -> (H, W) uint8`` class ids at the image's size."""

    def __init__(self, export_dir):
        self.export_dir = io.check_path(export_dir, "--scene-model")
        marker = io.join(self.export_dir, MARKER)
        if not io.isfile(marker):
            raise ModelError(f"{self.export_dir}: not a scene-model export (no {MARKER}); export a garden_deeplab* "
                             "config with `tfod-seg export`")
        info = io.read_json(marker, ModelError, "scene export description")
        self.classes: Dict[int, str] = {int(k): v for k, v in info["classes"].items()}
        self.saved_model_dir = resolve_export_dir(self.export_dir)
        import tensorflow as tf

        try:
            self.signature = tf.saved_model.load(self.saved_model_dir).signatures["serving_default"]
        except Exception as e:
            raise ModelError(f"{self.saved_model_dir}: cannot load the scene SavedModel ({type(e).__name__}: "
                             f"{str(e)[:200]})") from None
        self.input_name = info.get("input_name", "inputs")

    def predict(self, image) -> np.ndarray:
        """Class ids ``(H, W)`` uint8 for one image (path, array or PIL image)."""
        import cv2
        import tensorflow as tf

        arr = load_image(image)
        logits = self.signature(**{self.input_name: tf.constant(arr[None])})["logits"].numpy()[0]
        classes = np.argmax(logits, axis=-1).astype(np.uint8)
        if classes.shape != arr.shape[:2]:
            classes = cv2.resize(classes, (arr.shape[1], arr.shape[0]), interpolation=cv2.INTER_NEAREST)
        return classes


def colourise(image: np.ndarray, classes: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``image`` with each class (not the background) tinted in its own colour."""
    colours = instance_colors(int(classes.max()) + 1 if classes.size else 1, offset=3)
    tint = colours[classes].astype(np.float32)
    out = image.astype(np.float32)
    fg = classes > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * tint[fg]
    return out.astype(np.uint8)


@dataclasses.dataclass
class SemanticInferenceSummary:
    """What `run_semantic_inference` did; `to_json()` is ``summary.json``."""

    model: str
    out_dir: str
    images: int
    classes: Dict[str, str]
    pixel_share: Dict[str, float]
    outputs: Dict[str, str]
    seconds: float

    def to_json(self) -> Dict:
        return dataclasses.asdict(self)


def run_semantic_inference(model, images: List[str], out_dir, *, progress=None) -> SemanticInferenceSummary:
    """Run the scene export ``model`` over ``images`` (paths) and write class maps and overlays."""
    start = time.monotonic()
    predictor = model if isinstance(model, SemanticPredictor) else SemanticPredictor(model)
    out_dir = io.makedirs(io.check_path(out_dir, "--out folder"), "--out folder")
    dirs = {"semantic": io.join(out_dir, "semantic"), "overlay": io.join(out_dir, "overlays")}
    for d in dirs.values():
        io.makedirs(d)
    counts = np.zeros(256, np.int64)
    if not images:
        raise UserError("no images to run the scene model on")
    for path in images:
        arr = load_image(path)
        classes = predictor.predict(arr)
        stem = os.path.splitext(io.basename(path))[0]
        write_png(io.join(dirs["semantic"], stem + ".png"), classes, rgb=False)
        write_png(io.join(dirs["overlay"], stem + ".png"), colourise(arr, classes), rgb=True)
        counts += np.bincount(classes.reshape(-1), minlength=256)
        if progress is not None:
            progress.update(1)
    total = max(int(counts.sum()), 1)
    summary = SemanticInferenceSummary(
        model=predictor.export_dir, out_dir=out_dir, images=len(images),
        classes={str(k): v for k, v in predictor.classes.items()},
        pixel_share={v: round(float(counts[k]) / total, 4) for k, v in predictor.classes.items()},
        outputs=dirs, seconds=round(time.monotonic() - start, 3))
    io.atomic_write_json(io.join(out_dir, "summary.json"), summary.to_json())
    return summary


__all__ = ["MARKER", "SemanticInferenceSummary", "SemanticPredictor", "colourise", "is_semantic_export",
           "run_semantic_inference"]
