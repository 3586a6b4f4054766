"""`Predictor`: load a SavedModel with the TFOD2 detection signature and run images through it.

The signature (TFOD2 ``exporter_main_v2 --input_type image_tensor``, and this project's
Model Garden exports) is ``serving_default``:

* input ``input_tensor``: uint8 ``[1 or None, H or None, W or None, 3]``;
* outputs ``num_detections``, ``detection_boxes`` (normalised ``[ymin, xmin, ymax, xmax]``),
  ``detection_classes`` (float label-map ids from 1), ``detection_scores``,
  ``detection_masks`` (box-relative ``[N, h, w]`` in ``[0, 1]``), and optionally
  ``detection_masks_reframed`` (full-image uint8).

If the signature fixes the spatial size, images are resized to it; boxes are normalised, so
they hold for the original image, and masks are pasted at the original size.
"""

from __future__ import annotations

import logging
import os
from typing import List, Optional, Sequence, Union

import numpy as np

from tfod_seg import io
from tfod_seg.data.images import decode_rgb
from tfod_seg.errors import UserError
from tfod_seg.inference.detections import Detections
from tfod_seg.inference.paste import full_image_masks

log = logging.getLogger(__name__)

SIGNATURE_KEY = "serving_default"
INPUT_KEY = "input_tensor"
REQUIRED_OUTPUTS = ("detection_boxes", "detection_classes", "detection_scores")


class ModelError(UserError):
    """The model directory is missing or is not a SavedModel with the TFOD2 detection signature."""


def resolve_export_dir(export_dir: Union[str, os.PathLike]) -> str:
    """The SavedModel directory for ``export_dir`` (a local path or URL): the directory itself
    when it holds ``saved_model.pb``, else its ``saved_model/`` subdirectory (TFOD2's layout)."""
    export_dir = io.check_path(export_dir, "model directory")
    if not io.isdir(export_dir):
        raise ModelError(f"{export_dir}: model directory not found (expected a SavedModel export directory, "
                         "a .tflite or a .onnx file)")
    for cand in (export_dir, io.join(export_dir, "saved_model")):
        if io.isfile(io.join(cand, "saved_model.pb")):
            return cand
    raise ModelError(
        f"{export_dir}: no saved_model.pb here or in {io.join(export_dir, 'saved_model')}; "
        "expected a SavedModel from `tfod-seg export` or TFOD2's exporter_main_v2"
    )


def find_label_map(model: Union[str, os.PathLike]) -> Optional[str]:
    """The ``label_map.pbtxt`` beside a model: in an export directory, in the parent of its
    ``saved_model/``, or beside a ``.tflite`` / ``.onnx`` file."""
    model = io.check_path(model, "model")
    if io.isfile(model):
        cands = [io.dirname(io.abspath(model))]
    else:
        saved = resolve_export_dir(model)
        cands = [model, saved, io.dirname(io.abspath(saved).rstrip("/"))]
    for cand in cands:
        path = io.join(cand, "label_map.pbtxt")
        if io.isfile(path):
            return path
    return None


def read_image(path) -> np.ndarray:
    """Decode an image file (local path or URL) to an upright uint8 ``(H, W, 3)`` RGB array
    (`tfod_seg.data.images.decode_rgb`, the conversion policy). `UserError` naming the file
    for a missing, corrupt or over-large (Pillow's decompression-bomb limit) image."""
    from PIL import Image

    path = io.check_path(path, "image")
    data = io.read_bytes(path, what="image")
    try:
        return decode_rgb(data, source=path)
    except Image.DecompressionBombError as e:
        raise UserError(f"{path}: image too large to decode safely ({e})") from None


def load_image(image) -> np.ndarray:
    """An upright uint8 ``(H, W, 3)`` RGB array from a path (or URL), an array or a PIL image.

    Paths are decoded with EXIF orientation applied (the orientation annotation tools show).
    Grey images are repeated to 3 channels, an alpha channel is dropped.
    """
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        image = read_image(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise UserError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def load_predictor(model):
    """A predictor for ``model``: a SavedModel export directory (`Predictor`), a ``.tflite``
    or ``.onnx`` file (`tfod_seg.inference.edge`), or an already loaded predictor (returned
    as is). All share `predict`, `predict_raw`, `detections_from_outputs`, `max_batch`."""
    if not isinstance(model, (str, os.PathLike)):
        return model
    path = io.check_path(model, "model")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".tflite", ".onnx"):
        from tfod_seg.inference.edge import load_edge_predictor

        return load_edge_predictor(path)
    return Predictor(path)


def detections_from_outputs(outputs: dict, index: int, height: int, width: int, *, min_score: float = 0.0,
                            mask_threshold: float = 0.5, with_masks: bool = True) -> Detections:
    """`Detections` for batch element ``index`` of TFOD2-signature outputs (NumPy arrays by
    output name), filtered to ``score >= min_score`` before the masks are pasted (so low
    scores cost nothing). ``height`` x ``width`` is the original image's size."""
    scores = np.asarray(outputs["detection_scores"][index], np.float32).reshape(-1)
    n = len(scores)
    if "num_detections" in outputs:
        n = min(n, int(np.asarray(outputs["num_detections"]).reshape(-1)[index]))
    keep = np.flatnonzero(scores[:n] >= min_score)
    one = {}
    for key in ("detection_boxes", "detection_classes", "detection_masks", "detection_masks_reframed"):
        if key in outputs:
            one[key] = np.asarray(outputs[key][index])[keep]
    masks = full_image_masks(one, height, width, mask_threshold) if with_masks else None
    classes = np.rint(one["detection_classes"]).astype(np.int64)
    return Detections(one["detection_boxes"], classes, scores[keep], masks, height, width)


class Predictor:
    """A loaded TFOD2-signature SavedModel.

    >>> p = Predictor("exported")            # the export dir or its saved_model/ subdir
    >>> det = p.predict("image.jpg", min_score=0.5)
    >>> det.masks.shape                      # (N, H, W) full-image uint8
    """

    def __init__(self, export_dir: Union[str, os.PathLike], *, mask_threshold: float = 0.5):
        self.export_dir = io.check_path(export_dir, "model directory")
        self.saved_model_dir = resolve_export_dir(export_dir)  # a wrong path fails before TensorFlow loads
        self.mask_threshold = mask_threshold

        import tensorflow as tf

        try:
            self._model = tf.saved_model.load(self.saved_model_dir)
        except Exception as e:  # a corrupt or foreign SavedModel
            raise ModelError(f"{self.saved_model_dir}: cannot load SavedModel ({type(e).__name__}: {str(e)[:200]})") from None
        signatures = getattr(self._model, "signatures", {}) or {}
        if SIGNATURE_KEY not in signatures:
            raise ModelError(
                f"{self.saved_model_dir}: no '{SIGNATURE_KEY}' signature (found {sorted(signatures) or 'none'}); "
                "expected the TFOD2 detection signature (export with --input_type image_tensor)"
            )
        self.signature = signatures[SIGNATURE_KEY]
        _, kwargs = self.signature.structured_input_signature
        if INPUT_KEY not in kwargs:
            raise ModelError(
                f"{self.saved_model_dir}: signature '{SIGNATURE_KEY}' takes {sorted(kwargs)}, expected '{INPUT_KEY}' "
                "(uint8 [1, H, W, 3]; export with --input_type image_tensor)"
            )
        spec = kwargs[INPUT_KEY]
        if spec.dtype != tf.uint8 or spec.shape.rank != 4:
            raise ModelError(
                f"{self.saved_model_dir}: input '{INPUT_KEY}' is {spec.dtype.name} {spec.shape}, expected uint8 [1, H, W, 3]"
            )
        outputs = self.signature.structured_outputs
        missing = [k for k in REQUIRED_OUTPUTS if k not in outputs]
        if missing:
            raise ModelError(
                f"{self.saved_model_dir}: signature outputs lack {missing} (found {sorted(outputs)}); "
                "expected the TFOD2 detection outputs"
            )
        dims = spec.shape.as_list()
        self.batch_dim: Optional[int] = dims[0]
        self.input_size = None if dims[1] is None or dims[2] is None else (int(dims[1]), int(dims[2]))
        self.has_masks = "detection_masks" in outputs or "detection_masks_reframed" in outputs
        self.output_keys = sorted(outputs)

    @property
    def max_batch(self) -> Optional[int]:
        """The signature's fixed batch size (calls are padded to it), or None for any batch."""
        return self.batch_dim

    def _call(self, batch: np.ndarray) -> dict:
        import tensorflow as tf

        n = len(batch)
        if self.batch_dim is not None and n < self.batch_dim:  # a fixed-batch export: pad the last batch
            batch = np.concatenate([batch, np.zeros((self.batch_dim - n, *batch.shape[1:]), batch.dtype)])
        if self.input_size is not None and batch.shape[1:3] != self.input_size:
            batch = tf.cast(tf.image.resize(batch, self.input_size), tf.uint8)
        out = self.signature(input_tensor=tf.convert_to_tensor(batch, tf.uint8))
        return {k: v.numpy()[:n] for k, v in out.items()}

    def predict_raw(self, batch: np.ndarray) -> dict:
        """Signature outputs (NumPy) for a uint8 ``[B, H, W, 3]`` batch; with a fixed-batch
        signature, ``B`` may be at most that size (smaller batches are zero-padded)."""
        batch = np.asarray(batch, np.uint8)
        if self.batch_dim is not None and len(batch) > self.batch_dim:
            raise ValueError(f"batch of {len(batch)} images for a signature of batch {self.batch_dim}")
        return self._call(batch)

    def detections_from_outputs(self, outputs: dict, index: int, height: int, width: int,
                                min_score: float = 0.0) -> Detections:
        """`Detections` for batch element ``index`` of raw signature outputs (see
        `detections_from_outputs`)."""
        return detections_from_outputs(outputs, index, height, width, min_score=min_score,
                                       mask_threshold=self.mask_threshold, with_masks=self.has_masks)

    def predict_batch(self, images: Sequence[np.ndarray], *, min_score: float = 0.0) -> List[Detections]:
        """Run same-sized uint8 ``(H, W, 3)`` images as one batch (one call when the
        signature's batch dimension allows it, else one call per image)."""
        if not len(images):
            return []
        step = self.batch_dim or len(images)
        out = []
        for start in range(0, len(images), step):
            batch = np.stack(images[start:start + step])
            raw = self._call(batch)
            out += [self.detections_from_outputs(raw, i, *batch.shape[1:3], min_score=min_score) for i in range(len(batch))]
        return out

    def predict(self, image, *, min_score: float = 0.0) -> Detections:
        """`Detections` for one image (path, ``(H, W, 3)``/``(H, W)`` array, or PIL image)."""
        arr = load_image(image)
        out = self._call(arr[None])
        return self.detections_from_outputs(out, 0, arr.shape[0], arr.shape[1], min_score=min_score)

    def __repr__(self) -> str:
        return f"Predictor({self.saved_model_dir!r}, input_size={self.input_size}, batch={self.batch_dim})"
