"""TF Serving REST request shapes against the SavedModel in-process (no server binary here)."""

import json

import numpy as np
import pytest

from tests.inference.fake_export import shapes_image
from tfod_seg.inference.predict import Predictor
from tfod_seg.inference.serving import (RestPredictor, ServingError, handle_predict, parse_response,
                                        predict_request)


def _images(n):
    return [shapes_image(shapes=(("rect", 1, (8 + i, 6, 30, 24)), ("circle", 2, (44, 30, 10 + i))))[0] for i in range(n)]


@pytest.mark.parametrize("form", ["instances", "inputs"])
def test_rest_forms_give_the_saved_model_detections(fake_batched, form):
    import tensorflow as tf

    loaded = tf.saved_model.load(fake_batched + "/saved_model")
    sent = []

    def transport(body):
        sent.append(json.loads(json.dumps(body)))  # what goes over the wire is plain JSON
        return json.loads(json.dumps(handle_predict(loaded, sent[-1])))

    rest = RestPredictor("http://localhost:8501/v1/models/m:predict", form=form, transport=transport, max_batch=None)
    local = Predictor(fake_batched)
    images = _images(3)
    for det, image in zip(rest.predict_batch(images, min_score=0.5), images):
        ref = local.predict(image, min_score=0.5)
        assert len(det) == len(ref) == 2
        np.testing.assert_allclose(det.boxes, ref.boxes, atol=1e-6)
        assert np.array_equal(det.classes, ref.classes) and np.array_equal(det.masks, ref.masks)
    body = sent[0]
    assert body["signature_name"] == "serving_default"
    if form == "instances":
        assert len(body["instances"]) == 3 and np.asarray(body["instances"][0]["input_tensor"]).shape == (48, 64, 3)
    else:
        assert np.asarray(body["inputs"]["input_tensor"]).shape == (3, 48, 64, 3)


def test_reply_shapes_and_errors(fake_boxrel):
    batch = np.stack(_images(1))
    row = handle_predict(fake_boxrel + "/saved_model", predict_request(batch, "instances"))
    assert len(row["predictions"]) == 1 and set(row["predictions"][0]) >= {"detection_boxes", "num_detections"}
    col = handle_predict(fake_boxrel + "/saved_model", predict_request(batch, "inputs"))
    assert np.asarray(col["outputs"]["detection_boxes"]).shape[0] == 1
    a, b = parse_response(row), parse_response(col)
    assert all(np.allclose(a[k], b[k]) for k in a)
    bad = handle_predict(fake_boxrel + "/saved_model", dict(predict_request(batch), signature_name="nope"))
    with pytest.raises(ServingError, match='signature name: "nope" not found'):
        parse_response(bad)
    with pytest.raises(ServingError, match="uint8 \\[B, H, W, 3\\]"):
        predict_request(np.zeros((4, 4, 3)))
    with pytest.raises(ServingError, match="cannot reach TF Serving"):
        RestPredictor("http://127.0.0.1:9/v1/models/m:predict").predict(batch[0])
