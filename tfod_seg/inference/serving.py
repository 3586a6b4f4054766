"""TensorFlow Serving REST: request bodies for an export's ``serving_default``, the replies
parsed back to NumPy, and a predictor over a served model.

Serve an export (``tfod-seg export`` writes ``OUTPUT_DIRECTORY/saved_model``; TF Serving wants
a numbered version folder, so link or copy it as ``models/maskrcnn/1``)::

    docker run -p 8501:8501 -v "$PWD/models/maskrcnn:/models/maskrcnn" \\
        -e MODEL_NAME=maskrcnn tensorflow/serving
    # or, installed: tensorflow_model_server --rest_api_port=8501 \\
    #     --model_name=maskrcnn --model_base_path="$PWD/models/maskrcnn"

then, in Python::

    from tfod_seg.inference.serving import RestPredictor
    p = RestPredictor("http://localhost:8501/v1/models/maskrcnn:predict")
    det = p.predict("image.jpg", min_score=0.5)   # Detections, as Predictor gives

The two request shapes of TF Serving's REST API (``POST .../v1/models/NAME:predict``):

* row ("instances"): ``{"signature_name": "serving_default", "instances": [{"input_tensor":
  <H x W x 3 ints>}, ...]}`` → ``{"predictions": [{"detection_boxes": ..., ...}, ...]}``, one
  entry per image;
* columnar ("inputs"): ``{"signature_name": "serving_default", "inputs": {"input_tensor":
  <B x H x W x 3 ints>}}`` → ``{"outputs": {"detection_boxes": <B x ...>, ...}}``.

`handle_predict` answers such a body from a SavedModel in this process with TF Serving's rules
(used by the tests, and to check a request before deploying).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from tfod_seg.errors import UserError
from tfod_seg.inference.detections import Detections
from tfod_seg.inference.predict import INPUT_KEY, SIGNATURE_KEY, detections_from_outputs, load_image

FORMS = ("instances", "inputs")


class ServingError(UserError):
    """A TF Serving request that failed or a reply that is not the detection signature's."""


def predict_request(images: np.ndarray, form: str = "instances", *, input_name: str = INPUT_KEY,
                    signature_name: str = SIGNATURE_KEY) -> Dict:
    """The JSON body for a uint8 ``[B, H, W, 3]`` batch in TF Serving's ``form``
    (``"instances"``: one object per image; ``"inputs"``: one batched tensor per input)."""
    images = np.asarray(images, np.uint8)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ServingError(f"images must be a uint8 [B, H, W, 3] batch, got shape {images.shape}")
    if form == "instances":
        return {"signature_name": signature_name, "instances": [{input_name: im.tolist()} for im in images]}
    if form == "inputs":
        return {"signature_name": signature_name, "inputs": {input_name: images.tolist()}}
    raise ServingError(f"form {form!r}: expected one of {', '.join(FORMS)}")


def parse_response(body: Dict) -> Dict[str, np.ndarray]:
    """Batched NumPy outputs by name from a TF Serving predict reply (either form)."""
    if not isinstance(body, dict):
        raise ServingError(f"TF Serving reply is {type(body).__name__}, expected a JSON object")
    if "error" in body:
        raise ServingError(f"TF Serving error: {body['error']}")
    if "predictions" in body:
        rows = body["predictions"]
        if not rows or not isinstance(rows[0], dict):
            raise ServingError("TF Serving 'predictions' are not objects by output name; expected the detection "
                               "signature's several outputs")
        return {k: np.asarray([row[k] for row in rows]) for k in rows[0]}
    if "outputs" in body and isinstance(body["outputs"], dict):
        return {k: np.asarray(v) for k, v in body["outputs"].items()}
    raise ServingError(f"TF Serving reply has neither 'predictions' nor 'outputs' (keys: {sorted(body)[:5]})")


def handle_predict(model, body: Dict) -> Dict:
    """Answer a TF Serving REST predict ``body`` with ``model`` (a SavedModel directory or a
    loaded SavedModel) the way ``tensorflow_model_server`` does: row requests get
    ``{"predictions": [...]}``, columnar ones ``{"outputs": {...}}``; a bad body gets
    ``{"error": ...}`` (TF Serving's HTTP 400 reply)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(model) if isinstance(model, str) else model
    name = body.get("signature_name", SIGNATURE_KEY)
    if name not in loaded.signatures:
        return {"error": f"Serving signature name: \"{name}\" not found in signature def"}
    fn = loaded.signatures[name]
    _, specs = fn.structured_input_signature
    try:
        if "instances" in body:
            rows = body["instances"]
            named = rows[0] if isinstance(rows[0], dict) else None
            feeds = {k: [r[k] for r in rows] for k in named} if named else {next(iter(specs)): rows}
        elif "inputs" in body:
            feeds = body["inputs"] if isinstance(body["inputs"], dict) else {next(iter(specs)): body["inputs"]}
        else:
            return {"error": "Missing 'inputs' or 'instances' key"}
        tensors = {k: tf.constant(np.asarray(v), dtype=specs[k].dtype) for k, v in feeds.items()}
        out = {k: v.numpy() for k, v in fn(**tensors).items()}
    except (KeyError, ValueError, TypeError, tf.errors.OpError) as e:
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
    if "instances" in body:
        return {"predictions": [{k: v[i].tolist() for k, v in out.items()} for i in range(len(rows))]}
    return {"outputs": {k: v.tolist() for k, v in out.items()}}


def http_transport(url: str, timeout: float = 60.0) -> Callable[[Dict], Dict]:
    """POST a JSON body to ``url`` (``http://HOST:8501/v1/models/NAME:predict``), return the reply."""

    def post(body: Dict) -> Dict:
        request = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 - user's server URL
                return json.loads(reply.read().decode("utf-8"))
        except urllib.error.HTTPError as e:  # TF Serving puts {"error": ...} in a 400 reply
            try:
                return json.loads(e.read().decode("utf-8"))
            except ValueError:
                raise ServingError(f"{url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            raise ServingError(f"{url}: cannot reach TF Serving ({getattr(e, 'reason', e)})") from None

    return post


class RestPredictor:
    """A model served by TF Serving, with the `Predictor` interface (`predict`,
    `predict_batch`, `predict_raw`, `detections_from_outputs`).

    ``transport`` sends a body and returns the reply (default: HTTP POST to ``url``; tests
    pass ``lambda body: handle_predict(saved_model, body)``)."""

    has_masks = True
    max_batch: Optional[int] = 1  # TFOD2-style exports take one image per call

    def __init__(self, url: str, *, form: str = "instances", transport: Optional[Callable[[Dict], Dict]] = None,
                 mask_threshold: float = 0.5, max_batch: Optional[int] = 1):
        if form not in FORMS:
            raise ServingError(f"form {form!r}: expected one of {', '.join(FORMS)}")
        self.export_dir = url  # what summaries name as the model
        self.form, self.mask_threshold, self.max_batch = form, mask_threshold, max_batch
        self.transport = transport or http_transport(url)

    def predict_raw(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        return parse_response(self.transport(predict_request(batch, self.form)))

    def detections_from_outputs(self, outputs: Dict, index: int, height: int, width: int,
                                min_score: float = 0.0) -> Detections:
        return detections_from_outputs(outputs, index, height, width, min_score=min_score,
                                       mask_threshold=self.mask_threshold, with_masks="detection_masks" in outputs
                                       or "detection_masks_reframed" in outputs)

    def predict_batch(self, images: Sequence[np.ndarray], *, min_score: float = 0.0) -> List[Detections]:
        step = self.max_batch or len(images)
        out: List[Detections] = []
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            raw = self.predict_raw(np.stack(chunk))
            out += [self.detections_from_outputs(raw, i, *chunk[i].shape[:2], min_score=min_score)
                    for i in range(len(chunk))]
        return out

    def predict(self, image, *, min_score: float = 0.0) -> Detections:
        arr = load_image(image)
        return self.detections_from_outputs(self.predict_raw(arr[None]), 0, *arr.shape[:2], min_score=min_score)


__all__ = ["FORMS", "RestPredictor", "ServingError", "handle_predict", "http_transport", "parse_response",
           "predict_request"]
