"""Sample → tf.train.Example: decodes with Model Garden's TfExampleDecoder, masks rasterised right."""

import numpy as np
import pytest
from pycocotools import mask as mask_util

from tests.data.fixtures import encode, photo
from tfod_seg.data.types import RLE, Bitmap, Instance, Polygons, Sample
from tfod_seg.data.masks import encode_mask_png, encode_mask_png_patch, rasterize, tight_patch
from tfod_seg.records.example import build_example

H, W = 60, 80
POLY = (10.0, 10.0, 50.0, 12.0, 45.0, 40.0, 12.0, 35.0)
DONUT = np.zeros((H, W), np.uint8)
DONUT[20:50, 30:70] = 1
DONUT[30:40, 40:60] = 0


def _sample(**kw):
    rle = mask_util.encode(np.asfortranarray(DONUT))
    instances = (
        Instance("cat", (10, 10, 50, 40), Polygons((POLY,))),
        Instance("dog", (30, 20, 70, 50), RLE(rle["counts"].decode(), (H, W)), iscrowd=True, area=123.0),
        Instance("dog", (5, 45, 15, 55), Bitmap(np.ones((10, 10), np.uint8), 5, 45)),
    )
    return Sample("7", "a.jpg", H, W, instances, image_bytes=encode(photo(W, H), "JPEG"), source="a.json", **kw)


def test_model_garden_decoder_reads_masks_boxes_classes():
    import tensorflow as tf
    from official.vision.dataloaders.tf_example_decoder import TfExampleDecoder

    sample = _sample()
    enc = build_example(sample, [1, 2, 2], ["cat", "dog", "dog"])
    assert enc.skipped == [] and enc.classes == [1, 2, 2]
    out = TfExampleDecoder(include_mask=True).decode(tf.constant(enc.data))
    masks = out["groundtruth_instance_masks"].numpy()
    expected = np.stack([mask_util.decode(mask_util.frPyObjects([list(POLY)], H, W)[0]), DONUT,
                         np.pad(np.ones((10, 10)), ((45, 5), (5, 65)))])
    np.testing.assert_array_equal(masks, expected.astype(np.float32))
    np.testing.assert_allclose(out["groundtruth_boxes"].numpy(),
                               [[10 / H, 10 / W, 40 / H, 50 / W], [20 / H, 30 / W, 50 / H, 70 / W],
                                [45 / H, 5 / W, 55 / H, 15 / W]], rtol=1e-6)
    np.testing.assert_array_equal(out["groundtruth_classes"].numpy(), [1, 2, 2])
    np.testing.assert_array_equal(out["groundtruth_is_crowd"].numpy(), [False, True, False])
    assert out["groundtruth_area"].numpy()[1] == 123.0
    assert out["groundtruth_area"].numpy()[0] == expected[0].sum()
    assert out["source_id"].numpy() == b"7"
    np.testing.assert_array_equal(out["image"].numpy(), tf.io.decode_jpeg(sample.image_bytes).numpy())


def test_features_become_a_deterministic_tf_train_example():
    import pickle

    import tensorflow as tf

    enc = build_example(_sample(), [1, 2, 2], ["cat", "dog", "dog"])
    enc = pickle.loads(pickle.dumps(enc))  # what a worker process sends back
    ex = tf.train.Example.FromString(enc.data)
    f = ex.features.feature
    assert f["image/format"].bytes_list.value == [b"jpeg"]
    assert f["image/height"].int64_list.value == [H] and f["image/width"].int64_list.value == [W]
    assert f["image/object/class/text"].bytes_list.value == [b"cat", b"dog", b"dog"]
    assert len(f["image/key/sha256"].bytes_list.value[0]) == 64
    assert enc.data == build_example(_sample(), [1, 2, 2], ["cat", "dog", "dog"]).data
    assert ex.SerializeToString(deterministic=True) == enc.data


def test_numerical_masks_are_a_flat_float_list():
    import tensorflow as tf

    enc = build_example(_sample(), [1, 2, 2], ["cat", "dog", "dog"], mask_type="numerical")
    vals = np.asarray(tf.train.Example.FromString(enc.data).features.feature["image/object/mask"].float_list.value)
    assert vals.shape == (3 * H * W,)
    np.testing.assert_array_equal(vals.reshape(3, H, W)[1], DONUT)


def test_negative_image_has_empty_lists_and_decodes():
    import tensorflow as tf
    from official.vision.dataloaders.tf_example_decoder import TfExampleDecoder

    s = Sample("1", "neg.jpg", H, W, (), image_bytes=encode(photo(W, H), "JPEG"))
    out = TfExampleDecoder(include_mask=True).decode(tf.constant(build_example(s, [], []).data))
    assert out["groundtruth_boxes"].shape[0] == 0
    assert tuple(out["groundtruth_instance_masks"].shape) == (0, H, W)


def test_mask_png_keeps_values_0_1_for_tf():
    import tensorflow as tf

    png = encode_mask_png(DONUT)
    np.testing.assert_array_equal(tf.io.decode_png(png, channels=1).numpy()[..., 0], DONUT)
    np.testing.assert_array_equal(tf.io.decode_image(png, channels=1).numpy()[..., 0], DONUT)


def test_bad_masks_become_instance_skips():
    s = Sample("1", "a.jpg", H, W, (
        Instance("cat", (0, 0, 10, 10), RLE("abc", (H + 1, W))),
        Instance("cat", (0, 0, 10, 10), None),
        Instance("cat", (0, 0, 10, 10), Polygons(((1, 1, 2, 2, 3, 3),))),  # collinear: empty mask
        Instance("cat", (0, 0, 10, 10), Polygons(((0, 0, 10, 0, 10, 10),))),
    ), image_bytes=encode(photo(W, H), "JPEG"), source="a.json")
    enc = build_example(s, [1, 1, 1, 1], ["cat"] * 4)
    assert [r["kind"] for r in enc.skipped] == ["rle_size_mismatch", "no_mask", "empty_mask"]
    assert all(r["file"] == "a.json" and r["level"] == "instance" for r in enc.skipped)
    assert "RLE size (h, w)=(61, 80) differs from the image size (60, 80)" in enc.skipped[0]["reason"]
    assert enc.classes == [1]


def test_image_size_mismatch_skips_the_image():
    s = Sample("1", "a.jpg", H + 2, W, (), image_bytes=encode(photo(W, H), "JPEG"), source="a.json")
    enc = build_example(s, [], [])
    assert enc.data is None
    assert enc.skipped[0]["kind"] == "image_size_mismatch"
    assert "annotation says 80x62 (WxH), the image is 80x60" in enc.skipped[0]["reason"]


@pytest.mark.parametrize("x0,y0", [(-3, -2), (75, 55), (0, 0)])
def test_bitmap_is_placed_and_clipped(x0, y0):
    out = rasterize(Bitmap(np.ones((8, 8), np.uint8), x0, y0), H, W)
    expected = np.zeros((H, W), np.uint8)
    expected[max(y0, 0):min(y0 + 8, H), max(x0, 0):min(x0 + 8, W)] = 1
    np.testing.assert_array_equal(out, expected)


def test_uncompressed_rle():
    rle = {"counts": [5, 10, H * W - 15], "size": [H, W]}
    m = rasterize(RLE(tuple(rle["counts"]), (H, W)), H, W)
    assert m.sum() == 10 and m.T.reshape(-1)[5:15].all()  # column-major runs, as COCO defines them


def test_mask_png_patch_decodes_exactly_for_every_placement():
    import io

    import tensorflow as tf
    from PIL import Image

    rng = np.random.default_rng(0)
    cases = [np.zeros((H, W), np.uint8), np.ones((H, W), np.uint8), DONUT]
    for _ in range(12):
        m = np.zeros((H, W), np.uint8)
        y0, x0 = rng.integers(0, H), rng.integers(0, W)
        m[y0:y0 + rng.integers(1, 30), x0:x0 + rng.integers(1, 30)] = 1
        m[rng.integers(0, H), :] = 1 if rng.uniform() < 0.3 else m[0, :]  # rows touching edges
        cases.append(m)
    for m in cases:
        png = encode_mask_png_patch(*tight_patch(m), H, W)
        decoded = Image.open(io.BytesIO(png))
        assert decoded.mode == "L"  # single channel, 8 bit
        np.testing.assert_array_equal(np.asarray(decoded), m)
        np.testing.assert_array_equal(tf.io.decode_png(png, channels=1).numpy()[..., 0], m)


def test_polygon_patch_equals_full_image_rasterisation():
    rng = np.random.default_rng(1)
    for _ in range(50):
        pts = rng.uniform(-10, [W + 10, H + 10], (int(rng.integers(3, 12)), 2)).round(1).reshape(-1)
        full = mask_util.decode(mask_util.frPyObjects([pts.tolist()], H, W)[0])
        np.testing.assert_array_equal(rasterize(Polygons((tuple(pts),)), H, W), full)


def test_a_detached_local_image_is_read_back_to_the_same_example(tmp_path):
    """The local writer's workers leave an unchanged local image file out of their result
    (`detach_image`); the writer reads it back (`attach_image`) to the very same Example bytes.
    Re-encoded and embedded images keep their bytes; a file changed meanwhile is refused."""
    import dataclasses
    import pickle

    from tfod_seg.errors import AnnotationError
    from tfod_seg.records.example import attach_image, detach_image

    path = tmp_path / "a.jpg"
    path.write_bytes(_sample().image_bytes)
    sample = dataclasses.replace(_sample(), image_bytes=None, image_path=str(path))
    full = build_example(sample, [1, 2, 2], ["cat", "dog", "dog"])
    detached = pickle.loads(pickle.dumps(detach_image(full, sample)))  # what a worker sends back
    assert detached.image_file == str(path) and "image/encoded" not in detached.features
    assert full.nbytes - detached.nbytes == len(path.read_bytes())  # what a buffer holds
    assert attach_image(detached)["image/encoded"] == ("bytes", [path.read_bytes()])
    assert detached.data == full.data
    embedded = build_example(_sample(), [1, 2, 2], ["cat", "dog", "dog"])
    assert detach_image(embedded, _sample()) is embedded
    rotated = dataclasses.replace(full, reencoded="EXIF orientation 6 applied")
    assert detach_image(rotated, sample) is rotated
    path.write_bytes(encode(photo(W, H, seed=1), "JPEG"))
    with pytest.raises(AnnotationError, match="a.jpg: image file changed while it was being converted"):
        attach_image(detached)
