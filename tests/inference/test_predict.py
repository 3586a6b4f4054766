import numpy as np
import pytest
from PIL import Image

from tests.inference.fake_export import fake_export, save_fake_export, shapes_image
from tfod_seg.errors import UserError
from tfod_seg.inference import Detections, predict
from tfod_seg.inference.predict import ModelError, Predictor, find_label_map


def _iou(a, b):
    return (np.logical_and(a, b).sum()) / max(np.logical_or(a, b).sum(), 1)


@pytest.mark.parametrize("variant", ["boxrel", "reframed", "batched", "fixed64"])
def test_predict_recovers_known_objects(tmp_path_factory, variant):
    export = fake_export(tmp_path_factory, variant)
    image, masks = shapes_image()
    det = Predictor(export).predict(image)
    assert isinstance(det, Detections)
    assert det.classes.tolist() == [1, 2]
    np.testing.assert_allclose(det.scores, [0.9, 0.75])
    assert det.masks.shape == (2, 48, 64) and det.masks.dtype == np.uint8
    for k, cls in enumerate(det.classes):
        assert _iou(det.masks[k], masks[cls]) > 0.98
    # red rectangle x 8..30, y 6..24 inclusive -> pixel box [8, 6, 31, 25]
    np.testing.assert_allclose(det.pixel_boxes()[0], [8, 6, 31, 25], atol=0.5)
    np.testing.assert_allclose(det.coco_boxes()[0], [8, 6, 23, 19], atol=0.5)


def test_predict_accepts_path_pil_grey_and_filters(tmp_path, fake_boxrel):
    image, _ = shapes_image()
    path = tmp_path / "x.png"
    Image.fromarray(image).save(path)
    p = Predictor(fake_boxrel)
    from_path = p.predict(str(path))
    from_pil = p.predict(Image.fromarray(image))
    np.testing.assert_array_equal(from_path.masks, from_pil.masks)
    assert len(predict(p, image, min_score=0.8)) == 1
    assert len(p.predict(np.zeros((20, 30), np.uint8))) == 0  # grey, nothing detected
    det = p.predict(image)
    assert det.filter(0.8).classes.tolist() == [1]
    assert det.class_names(None) == ["class 1", "class 2"]


def test_exif_orientation_is_applied(tmp_path, fake_boxrel):
    image, masks = shapes_image()
    # store the image rotated so that EXIF orientation 6 (rotate 90 CW to display) restores it
    stored = np.rot90(image, 1).copy()
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rot.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=100)
    det = Predictor(fake_boxrel).predict(str(path))
    assert (det.height, det.width) == (48, 64)
    assert _iou(det.masks[0], masks[1]) > 0.9


def test_box_only_export(tmp_path_factory):
    det = Predictor(fake_export(tmp_path_factory, "nomask")).predict(shapes_image()[0])
    assert det.masks is None and len(det) == 2


def test_label_map_found_beside_export(fake_boxrel):
    assert find_label_map(fake_boxrel).endswith("label_map.pbtxt")


def test_bad_model_dirs(tmp_path, tmp_path_factory):
    with pytest.raises(ModelError, match="model directory not found"):
        Predictor(tmp_path / "nope")
    with pytest.raises(ModelError, match="no saved_model.pb"):
        Predictor(tmp_path)
    with pytest.raises(ModelError, match="expected 'input_tensor'"):
        Predictor(fake_export(tmp_path_factory, "badsig"))
    assert issubclass(ModelError, UserError)


def test_detections_validate_shapes():
    with pytest.raises(ValueError, match="masks must be"):
        Detections(np.zeros((1, 4)), [1], [0.5], np.zeros((1, 3, 3)), 4, 4)
    empty = Detections.empty(5, 6)
    assert len(empty) == 0 and empty.masks.shape == (0, 5, 6)
