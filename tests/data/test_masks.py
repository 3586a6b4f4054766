"""Mask sources → pixels (tfod_seg.data.masks): hostile geometry never reaches pycocotools."""

import numpy as np
import pytest
from pycocotools import mask as mask_util

from tfod_seg.data.masks import MaskError, clip_polygon, compressed_rle_counts, rasterize, safe_polygon_parts
from tfod_seg.data.types import RLE, Polygons

H, W = 40, 60


def _coco_raster(parts):
    rles = mask_util.frPyObjects([list(p) for p in parts], H, W)
    return mask_util.decode(mask_util.merge(rles))


def test_polygons_inside_the_image_are_rasterised_as_pycocotools_does():
    parts = ((5.0, 5.0, 30.5, 7.0, 20.0, 33.3), (40.0, 2.0, 58.0, 2.0, 58.0, 20.0, 41.0, 25.0))
    np.testing.assert_array_equal(rasterize(Polygons(parts), H, W), _coco_raster(parts))


def test_points_a_little_outside_are_passed_through_unchanged():
    part = (-30.0, -5.0, 80.0, 3.0, 20.0, 70.0)  # within one image side of the border
    np.testing.assert_array_equal(rasterize(Polygons((part,)), H, W), _coco_raster((part,)))


@pytest.mark.parametrize("far", [1e3, 1e9, 1e12, 1e300])
def test_far_points_are_clipped_keeping_the_area_inside_the_image(far):
    # A triangle with one vertex far away; the same triangle cut at 100 px is the reference
    # (pycocotools handles that fine). Only pixels on the cut edge may differ (its rounding).
    tri = (10.0, 10.0, 30.0, 12.0, far, far * 0.5)
    ref = _coco_raster((clip_polygon(tri, -100, -100, 100 + W, 100 + H),))
    got = rasterize(Polygons((tri,)), H, W)
    assert got.sum() > 100
    assert np.logical_and(got, ref).sum() / np.logical_or(got, ref).sum() > 0.97


def test_polygon_wholly_outside_gives_an_empty_mask():
    out = rasterize(Polygons(((-1e9, -1e9, -5e8, -1e9, -1e9, -5e8),)), H, W)
    assert out.shape == (H, W) and out.sum() == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_polygon_is_a_mask_error(bad):
    with pytest.raises(MaskError) as e:
        rasterize(Polygons(((1.0, 1.0, bad, 5.0, 9.0, 9.0),)), H, W)
    assert e.value.kind == "bad_polygon" and "non-finite" in str(e.value)


def test_clip_polygon_square_against_window():
    assert clip_polygon((-10, -10, 10, -10, 10, 10, -10, 10), 0, 0, 5, 5) == (0, 0, 5, 0, 5, 5, 0, 5) or set(
        zip(*[iter(clip_polygon((-10, -10, 10, -10, 10, 10, -10, 10), 0, 0, 5, 5))] * 2)) == {(0, 0), (5, 0), (5, 5),
                                                                                             (0, 5)}
    assert safe_polygon_parts([(1, 1, 5, 1, 5, 5)], H, W) == [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0]]


def test_compressed_rle_round_trip_and_garbage():
    m = np.zeros((H, W), np.uint8, order="F")
    m[3:9, 5:20] = 1
    enc = mask_util.encode(m)
    assert sum(compressed_rle_counts(enc["counts"])) == H * W
    np.testing.assert_array_equal(rasterize(RLE(enc["counts"].decode(), (H, W)), H, W), m)
    for garbage in ["hello world", "0" * 5, "~~~~", "PPPP1", ""]:
        with pytest.raises(MaskError) as e:
            rasterize(RLE(garbage, (H, W)), H, W)
        assert e.value.kind == "bad_rle"


def test_uncompressed_rle_must_cover_the_image():
    with pytest.raises(MaskError) as e:
        rasterize(RLE((10, 5, 3), (H, W)), H, W)
    assert e.value.kind == "rle_size_mismatch"
    with pytest.raises(MaskError):
        rasterize(RLE((H * W + 5, -5), (H, W)), H, W)
