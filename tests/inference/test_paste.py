import numpy as np
import pytest

from tfod_seg.inference.paste import full_image_masks, paste_masks


def _tfod_reframe(masks, boxes, height, width):
    """TFOD2's reframe_box_masks_to_image_masks (the reference), thresholded at 0.5."""
    import tensorflow as tf

    n = len(boxes)
    d = np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-4)
    rev = np.stack([-boxes[:, 0] / d[:, 0], -boxes[:, 1] / d[:, 1], (1 - boxes[:, 0]) / d[:, 0],
                    (1 - boxes[:, 1]) / d[:, 1]], 1).astype(np.float32)
    out = tf.image.crop_and_resize(masks[..., None].astype(np.float32), rev, tf.range(n), [height, width],
                                   extrapolation_value=0)
    return (out.numpy()[..., 0] > 0.5).astype(np.uint8)


@pytest.mark.parametrize("height,width", [(60, 80), (37, 23), (1, 5)])
def test_paste_matches_tfod_reframe(height, width):
    rng = np.random.default_rng(height)
    corners = np.sort(rng.uniform(-0.1, 1.1, (16, 2, 2)), axis=1)  # boxes partly outside the image too
    boxes = np.stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]], 1)
    masks = rng.uniform(0, 1, (16, 15, 15)).astype(np.float32)
    got = paste_masks(masks, boxes, height, width)
    ref = _tfod_reframe(masks, boxes, height, width)
    assert got.dtype == np.uint8 and got.shape == (16, height, width)
    assert ref.sum() > 0
    np.testing.assert_array_equal(got, ref)


def test_full_mask_box_fills_only_the_box():
    masks = np.ones((1, 28, 28), np.float32)
    boxes = np.array([[0.25, 0.5, 0.75, 1.0]])
    out = paste_masks(masks, boxes, 41, 21)[0]
    ys, xs = np.nonzero(out)
    assert (ys.min(), ys.max()) == (10, 30) and (xs.min(), xs.max()) == (10, 20)


def test_reframed_output_is_used_when_present():
    reframed = np.zeros((1, 8, 9), np.uint8)
    reframed[0, 2, 3] = 1
    outputs = {"detection_boxes": np.array([[0, 0, 1, 1]], np.float32),
               "detection_masks": np.ones((1, 4, 4), np.float32), "detection_masks_reframed": reframed}
    np.testing.assert_array_equal(full_image_masks(outputs, 8, 9), reframed)
    # wrong size (model saw a resized image): fall back to pasting the box-relative masks
    assert full_image_masks(outputs, 10, 9).sum() == 90
    assert full_image_masks({"detection_boxes": outputs["detection_boxes"]}, 8, 9) is None
