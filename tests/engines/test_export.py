"""Export of a real (tiny, session-trained) Model Garden Mask R-CNN with the TFOD2 signature.

The session fixture `tiny_export` (tests/garden_fixtures.py) exports `tiny_trained_model`
once; these tests load that SavedModel and check it against Model Garden's own
`DetectionModule` on a real image from the validation records.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tfod_seg.errors import ConfigError, EngineError

TFOD_OUTPUTS = {
    "num_detections": "float32",
    "detection_boxes": "float32",
    "detection_classes": "float32",
    "detection_scores": "float32",
    "detection_masks": "float32",
    "detection_masks_reframed": "uint8",
}


def _xywh(boxes_yxyx_px):
    b = np.asarray(boxes_yxyx_px, np.float64)
    return np.stack([b[:, 1], b[:, 0], b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]], axis=1)


def _iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


# -- the on-graph mask helpers, against Model Garden's NumPy paste (no model needed) ---------
def test_reframe_matches_model_garden_paste():
    import tensorflow as tf
    from official.vision.ops import mask_ops

    from tfod_seg.engines.garden.signature import reframe_box_masks

    rng = np.random.default_rng(0)
    h, w = 40, 56
    yy, xx = np.mgrid[0:28, 0:28]
    masks = np.stack([((yy - 14) ** 2 + (xx - 12) ** 2 < r * r).astype(np.float32) for r in (6, 9, 13)])
    masks = np.clip(masks * 0.9 + rng.uniform(0, 0.1, masks.shape), 0, 1).astype(np.float32)
    boxes = np.array([[0.1, 0.2, 0.5, 0.6], [0.3, 0.05, 0.95, 0.5], [0.0, 0.4, 1.0, 1.0]], np.float32)
    ours = reframe_box_masks(tf.constant(masks), tf.constant(boxes), h, w).numpy()
    assert ours.dtype == np.uint8 and ours.shape == (3, h, w) and set(np.unique(ours)) <= {0, 1}
    ref = mask_ops.paste_instance_masks_v2(masks, _xywh(boxes * [h, w, h, w]), h, w)
    for k in range(3):
        assert ref[k].sum() > 20
        assert (ours[k] != ref[k]).mean() < 0.005, k
    # Nothing outside its box.
    ymin, xmin, ymax, xmax = boxes[0] * [h, w, h, w]
    outside = np.ones((h, w), bool)
    outside[int(np.floor(ymin)):int(np.ceil(ymax)), int(np.floor(xmin)):int(np.ceil(xmax))] = False
    assert not ours[0][outside].any()


def test_resample_is_identity_for_equal_boxes_and_follows_clipping():
    import tensorflow as tf

    from tfod_seg.engines.garden.signature import reframe_box_masks, resample_box_masks

    rng = np.random.default_rng(1)
    masks = rng.uniform(0, 1, (2, 28, 28)).astype(np.float32)
    boxes = np.array([[0.1, 0.1, 0.6, 0.7], [0.2, 0.3, 0.9, 0.8]], np.float32)
    same = resample_box_masks(tf.constant(masks), tf.constant(boxes), tf.constant(boxes)).numpy()
    np.testing.assert_allclose(same, masks, atol=1e-4)

    # A box reaching past the image: the mask re-expressed over the clipped box pastes to the
    # same full-image mask as the original over the unclipped box.
    yy, xx = np.mgrid[0:28, 0:28]
    disk = ((yy - 13.5) ** 2 + (xx - 13.5) ** 2 < 144).astype(np.float32)[None]
    unclipped = np.array([[0.5, 0.6, 1.4, 1.3]], np.float32)
    clipped = np.clip(unclipped, 0, 1)
    resampled = resample_box_masks(tf.constant(disk), tf.constant(unclipped), tf.constant(clipped))
    a = reframe_box_masks(resampled, tf.constant(clipped), 64, 80).numpy()[0]
    b = reframe_box_masks(tf.constant(disk), tf.constant(unclipped), 64, 80).numpy()[0]
    assert b.sum() > 200 and _iou(a, b) > 0.97


# -- the real export -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def loaded(tiny_export):
    import tensorflow as tf

    return tf.saved_model.load(tiny_export.saved_model)


@pytest.fixture(scope="module")
def real_image(tiny_trained_model, loaded):
    """The validation image with the most detections, resized to a non-square shape so aspect
    handling is exercised."""
    import cv2
    import tensorflow as tf

    from tfod_seg.records.reader import iter_records

    best, best_n = None, -1
    for rec in iter_records(tiny_trained_model.val_records):
        image = rec.image()
        image = np.ascontiguousarray(cv2.resize(image, (image.shape[1] * 3 // 2, image.shape[0])))
        n = int(loaded.signatures["serving_default"](input_tensor=tf.constant(image[None]))["num_detections"][0])
        if n > best_n:
            best, best_n = image, n
    return best


@pytest.fixture(scope="module")
def outputs(loaded, real_image):
    import tensorflow as tf

    out = loaded.signatures["serving_default"](input_tensor=tf.constant(real_image[None]))
    return {k: v.numpy() for k, v in out.items()}


def _need_detections(outputs):
    # The tiny model is exported with score threshold 0, so any non-zero score is a detection;
    # none means the fixture's training collapsed (tests/garden_fixtures.py learning rate).
    assert int(outputs["num_detections"][0]) > 0, "tiny_trained_model detects nothing on any validation image"


def test_layout_label_map_and_config_copied(tiny_export, tiny_trained_model):
    out = tiny_export.output_directory
    assert tiny_export.saved_model == os.path.join(out, "saved_model")
    assert os.path.isfile(os.path.join(out, "saved_model", "saved_model.pb"))
    assert os.path.isfile(os.path.join(out, "checkpoint", "checkpoint"))
    with open(os.path.join(out, "label_map.pbtxt"), encoding="utf-8") as f, \
            open(tiny_trained_model.label_map, encoding="utf-8") as g:
        assert f.read() == g.read()
    with open(os.path.join(out, "pipeline.yaml"), encoding="utf-8") as f, \
            open(tiny_export.config, encoding="utf-8") as g:
        assert f.read() == g.read()
    assert not [n for n in os.listdir(out) if n.startswith(".export-")]  # staging removed


def test_signature_names_dtypes_shapes(loaded):
    import tensorflow as tf

    sig = loaded.signatures["serving_default"]
    _, kwargs = sig.structured_input_signature
    assert list(kwargs) == ["input_tensor"]
    spec = kwargs["input_tensor"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [1, None, None, 3]
    outs = sig.structured_outputs
    assert {k: v.dtype.name for k, v in outs.items()} == TFOD_OUTPUTS
    assert outs["detection_boxes"].shape.as_list()[-1] == 4
    assert outs["detection_masks"].shape.rank == 4
    assert outs["detection_masks_reframed"].shape.rank == 4


def test_outputs_on_a_real_image(outputs, real_image):
    _need_detections(outputs)
    h, w = real_image.shape[:2]
    n = int(outputs["num_detections"][0])
    max_det = outputs["detection_scores"].shape[1]
    assert outputs["num_detections"].shape == (1,) and 0 < n <= max_det
    boxes = outputs["detection_boxes"][0, :n]
    assert boxes.shape == (n, 4)
    assert (boxes >= 0).all() and (boxes <= 1).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    classes = outputs["detection_classes"][0, :n]
    assert outputs["detection_classes"].dtype == np.float32
    assert (classes >= 1).all() and (classes <= 3).all() and (classes == np.round(classes)).all()
    scores = outputs["detection_scores"][0, :n]
    assert (np.diff(scores) <= 1e-6).all() and (scores >= 0).all() and (scores <= 1).all()
    masks = outputs["detection_masks"][0, :n]
    assert masks.ndim == 3 and (masks >= 0).all() and (masks <= 1).all()
    reframed = outputs["detection_masks_reframed"]
    assert reframed.dtype == np.uint8 and reframed.shape == (1, n, h, w)
    assert set(np.unique(reframed)) <= {0, 1}


def test_loaded_object_is_callable_like_tfod2(loaded, outputs, real_image):
    import tensorflow as tf

    direct = loaded(tf.constant(real_image[None]))  # the TFOD2 notebook's detect_fn(input_tensor)
    np.testing.assert_allclose(direct["detection_boxes"].numpy(), outputs["detection_boxes"], atol=1e-6)


def test_boxes_and_masks_consistent_with_model_garden_module(tiny_export, tiny_trained_model, outputs, real_image):
    """Same checkpoint, same image, through Model Garden's own DetectionModule: its pixel boxes
    (of the resized model input, measured) divided by the resize scale and clipped to the image
    are our normalised boxes times the image size; its int32 classes are ours as floats; our
    full-image masks are Model Garden's own paste of our box-relative masks."""
    import tensorflow as tf
    from official.vision.ops import mask_ops
    from official.vision.serving import detection

    from tfod_seg.config.garden import load_experiment

    _need_detections(outputs)
    _, params = load_experiment(tiny_export.config)
    size = list(params.task.model.input_size[:2])
    module = detection.DetectionModule(params, batch_size=1, input_image_size=size)
    tf.train.Checkpoint(model=module.model).read(tf.train.latest_checkpoint(tiny_trained_model.model_dir)).expect_partial()
    ref = module.inference_from_image_tensors(tf.constant(real_image[None]))
    assert ref["detection_classes"].dtype == tf.int32  # why the wrapper exists

    h, w = real_image.shape[:2]
    n = int(outputs["num_detections"][0])
    assert int(ref["num_detections"][0]) == n
    info = ref["image_info"][0].numpy()
    assert tuple(info[0]) == (h, w) and not np.allclose(info[2], 1.0)  # really resized
    ref_px = ref["detection_boxes"][0, :n].numpy() / np.tile(info[2], 2)
    ref_px = np.clip(ref_px, 0, [h, w, h, w])
    ours_px = outputs["detection_boxes"][0, :n] * [h, w, h, w]
    np.testing.assert_allclose(ours_px, ref_px, atol=0.05)
    np.testing.assert_array_equal(outputs["detection_classes"][0, :n], ref["detection_classes"][0, :n].numpy())
    np.testing.assert_allclose(outputs["detection_scores"][0, :n], ref["detection_scores"][0, :n].numpy(), atol=1e-5)

    # Full-image masks: exactly Model Garden's own paste of its masks into its (unclipped) boxes.
    ref_unclipped = ref["detection_boxes"][0, :n].numpy() / np.tile(info[2], 2)
    ref_masks = ref["detection_masks"][0, :n].numpy()
    # Model Garden's reference paste itself fails (a broadcast error) for some boxes that reach
    # past the image edge; those detections are left out of the comparison, not the rest.
    pasted = {}
    for k in range(n):
        try:
            pasted[k] = mask_ops.paste_instance_masks_v2(ref_masks[k:k + 1], _xywh(ref_unclipped[k:k + 1]), h, w)[0]
        except ValueError:
            continue
    assert pasted, "Model Garden's paste failed for every detection"
    reframed = outputs["detection_masks_reframed"][0]
    for k in pasted:
        assert np.count_nonzero(reframed[k] != pasted[k]) <= max(3, 0.01 * pasted[k].sum()), k
    # Box-relative masks are relative to the (clipped) TFOD2 boxes: unchanged where Model
    # Garden's box lies inside the image, resampled where it was clipped, so that pasting them
    # into detection_boxes (what TFOD2 users do by hand) gives the same full-image masks.
    inside = (np.abs(ref_unclipped - ref_px) < 1e-3).all(axis=1)
    np.testing.assert_allclose(outputs["detection_masks"][0, :n][inside], ref_masks[inside], atol=1e-3)
    ours_masks = outputs["detection_masks"][0, :n]
    for k in pasted:
        if ours_px[k, 2] <= ours_px[k, 0] or ours_px[k, 3] <= ours_px[k, 1]:
            # Model Garden's box lies wholly outside the image: clipped to zero area (Model
            # Garden's paste cannot take it), and its full-image mask is empty.
            assert not reframed[k].any(), k
            continue
        by_hand = {k: mask_ops.paste_instance_masks_v2(ours_masks[k:k + 1], _xywh(ours_px[k:k + 1]), h, w)[0]}
        area = max(1.0, pasted[k].sum())
        if inside[k]:
            assert np.count_nonzero(by_hand[k] != reframed[k]) <= 0.01 * area + 3, k
        else:
            # A clipped box's mask was resampled bilinearly; the barely trained model's mask
            # probabilities sit near the 0.5 threshold, so edge pixels flip: compare by IoU.
            a, b = by_hand[k] > 0, reframed[k] > 0
            if min(a.sum(), b.sum()) < 20:  # a few-pixel sliver at the edge: IoU is meaningless
                continue
            iou = np.logical_and(a, b).sum() / np.logical_or(a, b).sum()
            assert iou >= 0.5, (k, iou)  # a wrong resample (shifted/flipped) gives ~0


@pytest.mark.slow
def test_encoded_image_and_tf_example_inputs(tiny_trained_model, tiny_export, loaded, real_image):
    """The other two input types (traced, not saved: saving is the same Model Garden call)
    give the image_tensor export's detections for the same PNG-encoded image."""
    import cv2
    import tensorflow as tf

    from tfod_seg.config.garden import load_experiment
    from tfod_seg.engines.garden.signature import INPUT_NAME, TFODDetectionModule

    _, params = load_experiment(tiny_export.config)
    module = TFODDetectionModule(params, batch_size=1, input_image_size=list(params.task.model.input_size[:2]),
                                 input_type="image_bytes", input_name=INPUT_NAME)
    tf.train.Checkpoint(model=module.model).read(tf.train.latest_checkpoint(tiny_trained_model.model_dir)).expect_partial()
    sigs = module.get_inference_signatures({"image_bytes": "serving_default", "tf_example": "tf_example"})
    png = cv2.imencode(".png", cv2.cvtColor(real_image, cv2.COLOR_RGB2BGR))[1].tobytes()
    example = tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png]))})).SerializeToString()
    want = loaded.signatures["serving_default"](input_tensor=tf.constant(real_image[None]))
    for key, data in (("serving_default", png), ("tf_example", example)):
        (spec,) = tf.nest.flatten(sigs[key].structured_input_signature)
        assert spec.name == INPUT_NAME and spec.dtype == tf.string and spec.shape.as_list() == [1]
        got = sigs[key](tf.constant([data]))
        assert set(got) == set(TFOD_OUTPUTS)
        np.testing.assert_allclose(got["detection_boxes"].numpy(), want["detection_boxes"].numpy(), atol=1e-4)
        np.testing.assert_array_equal(got["detection_masks_reframed"].numpy(), want["detection_masks_reframed"].numpy())


# -- errors ---------------------------------------------------------------------------------
def test_empty_checkpoint_dir_is_a_clear_error(tmp_path):
    from tfod_seg.engines.garden.export import export

    empty = tmp_path / "model"
    empty.mkdir()
    with pytest.raises(EngineError, match=r"model: no checkpoint found"):
        export(tmp_path / "any.yaml", empty, tmp_path / "out")
    with pytest.raises(EngineError, match=r"missing: trained checkpoint directory does not exist"):
        export(tmp_path / "any.yaml", tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ConfigError, match=r"--input_type: got 'jpeg'"):
        export(tmp_path / "any.yaml", empty, tmp_path / "out", input_type="jpeg")
    assert not (tmp_path / "out").exists()


def test_cli_export_error_is_one_line(tmp_path, capsys):
    from tfod_seg.cli import main

    (tmp_path / "model").mkdir()
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text("# tfod-seg experiment: maskrcnn_resnetfpn_coco\n")
    rc = main(["export", "--pipeline_config_path", str(cfg), "--trained_checkpoint_dir", str(tmp_path / "model"),
               "--output_directory", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    error = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "no checkpoint found" in error[0] and str(tmp_path / "model") in error[0]
    assert "Traceback" not in err


def test_label_map_found_from_config_header_or_records(tmp_path):
    from tfod_seg.engines.garden.export import find_label_map

    lm = tmp_path / "data" / "label_map.pbtxt"
    lm.parent.mkdir()
    lm.write_text("item {\n  id: 1\n  name: 'a'\n}\n")
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(f"# tfod-seg experiment: maskrcnn_resnetfpn_coco\n# label map: {lm} (1 classes: a)\ntask: {{}}\n")
    assert find_label_map(str(cfg)) == str(lm)

    class _Params:  # the only field find_label_map reads
        class task:
            class train_data:
                input_path = str(tmp_path / "data" / "train-*.tfrecord")

    cfg.write_text("# tfod-seg experiment: maskrcnn_resnetfpn_coco\ntask: {}\n")
    assert find_label_map(str(cfg)) is None
    assert find_label_map(str(cfg), _Params) == str(lm)


def test_cli_export_dispatches_tfod_configs_to_the_tfod_engine(tmp_path, monkeypatch, capsys):
    from tfod_seg.cli import main
    from tfod_seg.engines.tfod import runner

    seen = {}

    def fake_run_job(mode, flags, *, tfod_python=None, on_progress=None, log_path=None):
        seen.update(mode=mode, flags=flags, tfod_python=tfod_python)
        return runner.RunOutcome(mode, "o/export.log", 0.0)

    monkeypatch.setattr(runner, "run_job", fake_run_job)
    cfg = tmp_path / "pipeline.config"
    cfg.write_text("model { faster_rcnn { num_classes: 3 } }\n")
    out = str(tmp_path / "o")
    rc = main(["export", "--pipeline_config_path", str(cfg), "--trained_checkpoint_dir", "m", "--output_directory", out,
               "--input_type", "encoded_image_string_tensor", "--config_override", "model {}", "--tfod-python", "/x/py"])
    assert rc == 0
    assert seen == {"mode": "export", "tfod_python": "/x/py", "flags": {
        "pipeline_config_path": str(cfg), "trained_checkpoint_dir": "m", "output_directory": out,
        "input_type": "encoded_image_string_tensor", "config_override": "model {}"}}
    assert f"SavedModel: {out}/saved_model" in capsys.readouterr().out

    yaml_cfg = tmp_path / "pipeline.yaml"
    yaml_cfg.write_text("# tfod-seg experiment: maskrcnn_resnetfpn_coco\n")
    rc = main(["export", "--pipeline_config_path", str(yaml_cfg), "--trained_checkpoint_dir", "m",
               "--output_directory", "o", "--config_override", "model {}"])
    assert rc == 2 and "--config_override: TFOD2-only flag(s), but the engine is garden" in capsys.readouterr().err
