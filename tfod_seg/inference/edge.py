"""Run `.tflite` (TFLite interpreter) and `.onnx` (onnxruntime) Mask R-CNN models from
`tfod-seg export --format` with the interface of `tfod_seg.inference.predict.Predictor`, so
`infer`, `score` and `predict` take them unchanged.

The model file holds the network only; this module does the rest, as described in
`tfod_seg.engines.edge_spec` (read from ``model.json`` beside the model): letterbox and
normalise each image (`letterbox`), run the graph in batches of the model's fixed batch size
(the last batch zero-padded), then turn the outputs into the SavedModel's: boxes normalised to
the original image and clipped, masks pasted on the full image with the SavedModel's
convention (`tfod_seg.inference.paste.paste_masks_centred`).
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from tfod_seg import io
from tfod_seg.engines.edge_spec import EdgeSpec, spec_path
from tfod_seg.errors import UserError
from tfod_seg.inference.detections import Detections
from tfod_seg.inference.paste import paste_masks_centred
from tfod_seg.inference.predict import load_image


class EdgeModelError(UserError):
    """A `.tflite` / `.onnx` file that cannot be used (missing, corrupt, no spec beside it)."""


def letterbox(image: np.ndarray, spec: EdgeSpec) -> tuple:
    """``(input float32 [H, W, 3], scaled (h, w), scale (sy, sx))`` of one uint8 RGB image:
    normalised, scaled to fit ``spec.desired_size`` (aspect kept, bilinear with half-pixel
    centres as ``tf.image.resize``), zero-padded at the bottom/right to ``spec.input_size``."""
    import cv2

    h, w = image.shape[:2]
    dh, dw = spec.desired_size
    scale = min(dh / h, dw / w)
    sh, sw = int(round(h * scale)), int(round(w * scale))
    norm = (image.astype(np.float32) - np.asarray(spec.mean_rgb, np.float32)) / np.asarray(spec.stddev_rgb, np.float32)
    if (sh, sw) != (h, w):
        norm = cv2.resize(norm, (sw, sh), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((*spec.input_size, 3), np.float32)
    out[:sh, :sw] = norm[: spec.input_size[0], : spec.input_size[1]]
    return out, (sh, sw), (sh / h, sw / w)


class _TFLite:
    def __init__(self, path: str):
        import tensorflow as tf

        self.interpreter = tf.lite.Interpreter(model_path=path, num_threads=os.cpu_count() or 1)
        self.interpreter.allocate_tensors()
        self.inputs = {d["name"].split(":")[0]: d["index"] for d in self.interpreter.get_input_details()}
        self.outputs = {d["name"].split(":")[0]: d["index"] for d in self.interpreter.get_output_details()}
        runner = self.interpreter.get_signature_runner() if self.interpreter.get_signature_list() else None
        self.runner = runner

    def __call__(self, images: np.ndarray, image_shape: np.ndarray) -> Dict[str, np.ndarray]:
        if self.runner is not None:
            return {k: np.asarray(v) for k, v in self.runner(images=images, image_shape=image_shape).items()}
        raise EdgeModelError("TFLite model has no signature; re-export with `tfod-seg export --format tflite`")


class _Onnx:
    def __init__(self, path: str):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, images: np.ndarray, image_shape: np.ndarray) -> Dict[str, np.ndarray]:
        feeds = {}
        for name in self.input_names:  # tf2onnx keeps the signature's names (maybe with ':0')
            base = name.split(":")[0]
            if base not in ("images", "image_shape"):
                raise EdgeModelError(f"ONNX model input '{name}' is not one of images, image_shape; "
                                     "re-export with `tfod-seg export --format onnx`")
            feeds[name] = images if base == "images" else image_shape
        values = self.session.run(None, feeds)
        return {name.split(":")[0]: np.asarray(v) for name, v in zip(self.output_names, values)}


class EdgePredictor:
    """A loaded `.tflite` or `.onnx` model with the `Predictor` interface.

    >>> p = EdgePredictor("exported_tflite/model.tflite")
    >>> det = p.predict("image.jpg", min_score=0.5)   # Detections with full-image masks
    """

    has_masks = True

    def __init__(self, path, *, mask_threshold: float = 0.5):
        self.export_dir = io.check_path(path, "model")
        self.mask_threshold = mask_threshold
        if not io.isfile(self.export_dir):
            raise EdgeModelError(f"{self.export_dir}: model file not found (expected a .tflite or .onnx file from "
                                 "`tfod-seg export --format`)")
        meta = spec_path(self.export_dir)
        if not io.isfile(meta):
            raise EdgeModelError(f"{self.export_dir}: no {io.basename(meta)} beside it (the input size and output "
                                 "layout `tfod-seg export --format` writes); re-export or copy it along")
        self.spec = EdgeSpec.from_json(io.read_json(meta, EdgeModelError, "edge model description"), meta)
        with io.local_copy(self.export_dir, "model") as local:
            try:
                self._run = _TFLite(local) if self.export_dir.lower().endswith(".tflite") else _Onnx(local)
            except EdgeModelError:
                raise
            except Exception as e:  # noqa: BLE001 - a corrupt or foreign file
                raise EdgeModelError(f"{self.export_dir}: cannot load the model ({type(e).__name__}: "
                                     f"{str(e).strip()[:200]})") from None

    @property
    def max_batch(self) -> Optional[int]:
        """The model's fixed batch size (calls are padded to it), or None for any batch."""
        return self.spec.batch_size

    def _run_batch(self, images: List[np.ndarray]) -> Dict[str, np.ndarray]:
        prepared = [letterbox(im, self.spec) for im in images]
        x = np.stack([p[0] for p in prepared])
        shape = np.asarray([p[1] for p in prepared], np.float32)
        n, fixed = len(images), self.spec.batch_size
        if fixed is not None and n < fixed:  # pad the last batch
            x = np.concatenate([x, np.zeros((fixed - n, *x.shape[1:]), np.float32)])
            shape = np.concatenate([shape, np.repeat(shape[:1], fixed - n, axis=0)])
        out = self._run(x, shape)
        out = {k: v[:n] for k, v in out.items()}
        out["scale"] = np.asarray([p[2] for p in prepared], np.float32)
        return out

    def predict_raw(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        """Raw outputs for a uint8 ``[B, H, W, 3]`` batch (run in chunks of the fixed batch)."""
        batch = np.asarray(batch, np.uint8)
        step = self.spec.batch_size or len(batch)
        parts = [self._run_batch(list(batch[i:i + step])) for i in range(0, len(batch), step)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def detections_from_outputs(self, outputs: Dict, index: int, height: int, width: int,
                                min_score: float = 0.0) -> Detections:
        """`Detections` of batch element ``index`` (original image ``height`` x ``width``)."""
        scores = np.asarray(outputs["detection_scores"][index], np.float32)
        n = min(len(scores), int(np.asarray(outputs["num_detections"][index]).reshape(-1)[0]))
        keep = np.flatnonzero(scores[:n] >= min_score)
        sy, sx = (float(v) for v in outputs["scale"][index])
        pixels = np.asarray(outputs["detection_boxes"][index], np.float64)[keep] / [sy, sx, sy, sx]
        boxes = pixels / [height, width, height, width]
        masks = paste_masks_centred(np.asarray(outputs["detection_masks"][index])[keep], boxes, height, width,
                                    self.mask_threshold)
        classes = np.rint(np.asarray(outputs["detection_classes"][index])[keep]).astype(np.int64)
        return Detections(np.clip(boxes, 0.0, 1.0), classes, scores[keep], masks, height, width)

    def predict_batch(self, images: Sequence[np.ndarray], *, min_score: float = 0.0) -> List[Detections]:
        if not len(images):
            return []
        out = self.predict_raw(np.stack(images))
        return [self.detections_from_outputs(out, i, *images[i].shape[:2], min_score=min_score)
                for i in range(len(images))]

    def predict(self, image, *, min_score: float = 0.0) -> Detections:
        arr = load_image(image)
        return self.detections_from_outputs(self.predict_raw(arr[None]), 0, *arr.shape[:2], min_score=min_score)

    def __repr__(self) -> str:
        return f"EdgePredictor({self.export_dir!r}, {self.spec.format}, batch={self.spec.batch_size})"


def load_edge_predictor(path: str) -> EdgePredictor:
    return EdgePredictor(path)


__all__ = ["EdgeModelError", "EdgePredictor", "letterbox", "load_edge_predictor"]
