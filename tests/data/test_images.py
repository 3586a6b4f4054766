"""Image loading: formats → 8-bit RGB, JPEG pass-through, EXIF orientation policy, corrupt files."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.data.fixtures import encode, photo
from tfod_seg.data import images
from tfod_seg.errors import AnnotationError


def _exif_jpeg(arr, orientation):
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[images.EXIF_ORIENTATION] = orientation
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


def test_plain_jpeg_passes_through_byte_for_byte():
    data = encode(photo(64, 48), "JPEG", quality=90)
    out = images.encode_for_record(data, "a.jpg")
    assert out.encoded is data or out.encoded == data
    assert (out.format, out.height, out.width, out.reencoded) == ("jpeg", 48, 64, None)


def test_jpeg_with_orientation_1_passes_through():
    data = _exif_jpeg(photo(64, 48), 1)
    assert images.encode_for_record(data).encoded == data


def test_grayscale_jpeg_and_png_pass_through():
    gray = photo(40, 30)[..., 0]
    for fmt in ("JPEG", "PNG"):
        data = encode(gray, fmt)
        out = images.encode_for_record(data)
        assert out.encoded == data and out.reencoded is None
        assert images.decode_rgb(out.encoded).shape == (30, 40, 3)


@pytest.mark.parametrize("orientation,expected_hw", [(6, (64, 48)), (8, (64, 48)), (3, (48, 64)), (2, (48, 64))])
def test_exif_orientation_is_applied_and_reencoded(orientation, expected_hw):
    arr = np.zeros((48, 64, 3), np.uint8)
    arr[:10, :20] = 255  # a white block in the stored top-left corner
    data = _exif_jpeg(arr, orientation)
    out = images.encode_for_record(data, "rot.jpg")
    assert (out.height, out.width) == expected_hw
    assert out.orientation == orientation and "EXIF orientation" in out.reencoded
    assert images.image_size(data=data) == expected_hw
    # the stored bytes are upright: no orientation tag left, pixels turned as a viewer shows them
    assert images._orientation(Image.open(io.BytesIO(out.encoded))) == 1
    upright = images.decode_rgb(out.encoded, apply_exif=False)
    reference = np.asarray(Image.open(io.BytesIO(data)).transpose(
        {6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90, 3: Image.Transpose.ROTATE_180,
         2: Image.Transpose.FLIP_LEFT_RIGHT}[orientation]).convert("RGB"))
    assert np.abs(upright.astype(int) - reference.astype(int)).mean() < 3  # only JPEG re-encoding loss
    np.testing.assert_array_equal(images.decode_rgb(data).shape, upright.shape)


def test_size_check_explains_sideways_annotation():
    data = _exif_jpeg(photo(64, 48), 6)
    out = images.encode_for_record(data)
    images.check_size(out, 64, 48, "a.json")  # upright size: fine
    with pytest.raises(AnnotationError, match=r"a\.json: image size differs.*EXIF orientation 6.*upright frame"):
        images.check_size(out, 48, 64, "a.json")


def test_mode_conversions_give_uint8_rgb():
    rgb = photo(32, 24)
    g16 = (rgb[..., 0].astype(np.uint16) * 257)
    cases = {
        "rgba_png": encode(np.dstack([rgb, np.full((24, 32), 128, np.uint8)]), "PNG"),
        "palette_png": (lambda b: (Image.fromarray(rgb).convert("P").save(b, format="PNG"), b.getvalue())[1])(io.BytesIO()),
        "gray16_png": (lambda b: (Image.fromarray(g16).save(b, format="PNG"), b.getvalue())[1])(io.BytesIO()),
        "bmp": encode(rgb, "BMP"),
        "cmyk_jpeg": (lambda b: (Image.fromarray(rgb).convert("CMYK").save(b, format="JPEG", quality=95),
                                 b.getvalue())[1])(io.BytesIO()),
    }
    for name, data in cases.items():
        out = images.encode_for_record(data, name)
        assert out.reencoded, name
        assert out.format == ("jpeg" if name == "cmyk_jpeg" else "png"), name
        arr = images.decode_rgb(out.encoded)
        assert arr.dtype == np.uint8 and arr.shape == (24, 32, 3), name
        assert Image.open(io.BytesIO(out.encoded)).mode == "RGB", name
    gray = images.decode_rgb(images.encode_for_record(cases["gray16_png"]).encoded)
    np.testing.assert_array_equal(gray[..., 0], rgb[..., 0])  # 16-bit scaled back exactly (v*257 → v)
    np.testing.assert_array_equal(images.decode_rgb(images.encode_for_record(cases["bmp"]).encoded), rgb)


def test_truncated_jpeg_is_refused_with_file_name():
    data = encode(photo(128, 96), "JPEG", quality=90)
    with pytest.raises(AnnotationError, match=r"broken\.jpg: image file is truncated"):
        images.encode_for_record(data[: len(data) // 2], "broken.jpg")


def test_not_an_image():
    with pytest.raises(AnnotationError, match=r"x\.jpg: not an image file"):
        images.encode_for_record(b"hello world", "x.jpg")


def test_missing_file(tmp_path):
    with pytest.raises(AnnotationError, match="image file not found"):
        images.load_rgb(tmp_path / "nope.jpg")


def test_jpeg_completeness_check():
    data = encode(photo(64, 48), "JPEG", quality=90)
    assert images.jpeg_is_complete(data)
    assert images.jpeg_is_complete(data + b"trailing bytes after EOI")
    for cut in (len(data) - 2, len(data) - 100, len(data) // 2):
        assert not images.jpeg_is_complete(data[:cut])
    # an EXIF thumbnail's end marker before the scan does not make a truncated file pass
    img = Image.fromarray(photo(64, 48))
    exif = img.getexif()
    exif[0x010F] = "cam"
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes() + b"\xff\xd9")
    full = buf.getvalue()
    assert images.jpeg_is_complete(full) and not images.jpeg_is_complete(full[:-50])
