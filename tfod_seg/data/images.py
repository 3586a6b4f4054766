"""Image loading: any common file → what goes into a TFRecord, and → uint8 RGB arrays.

Supported inputs: JPEG (baseline, progressive, grayscale, CMYK), PNG (8/16-bit, grayscale,
RGB, RGBA, palette), BMP, TIFF, GIF, WebP (anything Pillow opens). Output is always 8-bit,
3-channel RGB as the decoders (`tf.io.decode_image(channels=3)`) see it.

EXIF orientation policy
-----------------------
A photo from a phone is often stored sideways with an EXIF ``Orientation`` tag (values 2-8)
telling viewers how to turn it upright. LabelMe (which calls ``ImageOps.exif_transpose``)
and browsers display the *upright* image, so people annotate the upright image. TensorFlow's
decoders ignore EXIF. tfod-seg therefore:

1. takes every annotation (points, boxes, masks, ``height``/``width``) to be in the **upright**
   frame;
2. when the tag asks for a rotation or flip, rotates the pixels upright and re-encodes them
   (JPEG quality 95 for JPEG sources, PNG otherwise) without the tag, so the record's image,
   its masks and its boxes are aligned whatever decoder reads it;
3. passes JPEG bytes through **byte for byte** when no fix is needed (no tag, or tag 1), and
   likewise 8-bit grayscale/RGB PNG. Anything else (CMYK, 16-bit, RGBA, palette, BMP, ...)
   is converted to 8-bit RGB (alpha dropped, 16-bit scaled by 1/257) and stored as PNG, or as
   JPEG when the source was a JPEG.

An annotation whose declared size matches the stored (sideways) pixel grid instead of the
upright one is refused with a message saying so, rather than silently misaligned.

Every image is checked while converting, so truncated files are caught at conversion time, not
in the middle of training: JPEGs that pass through are checked structurally (headers parse,
the scan data ends with an end-of-image marker) without decoding pixels; every other image is
fully decoded.
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import TYPE_CHECKING, Optional, Tuple, Union

from tfod_seg.errors import AnnotationError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image as PILImage

EXIF_ORIENTATION = 0x0112
# Orientations 5-8 involve a 90 degree turn: width and height swap.
_SWAPS_AXES = (5, 6, 7, 8)
JPEG_QUALITY = 95


@dataclasses.dataclass(frozen=True)
class EncodedImage:
    """Image bytes ready for ``image/encoded``, upright, and how they were obtained.

    ``format`` is ``"jpeg"`` or ``"png"``; ``height``/``width`` are the upright size;
    ``orientation`` is the source's EXIF orientation (1 when absent); ``reencoded`` is
    ``None`` when ``encoded`` is the source bytes unchanged, else why it was re-encoded.
    """

    encoded: bytes
    format: str
    height: int
    width: int
    orientation: int = 1
    reencoded: Optional[str] = None


def _open(data: bytes, source: Optional[str]) -> "PILImage.Image":
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise AnnotationError(source, "not an image file Pillow can read (unknown or corrupt format)") from None
    except (OSError, ValueError, SyntaxError) as e:  # Pillow raises these for corrupt headers
        if "runcated" in str(e):
            raise AnnotationError(source, f"image file is truncated or corrupt ({e})") from None
        raise AnnotationError(source, f"cannot read image header: {e}") from None


def _orientation(img) -> int:
    try:
        value = int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1
    return value if 1 <= value <= 8 else 1


def _load(img, source: Optional[str]) -> None:
    try:
        img.load()
    except (OSError, ValueError, SyntaxError) as e:
        msg = str(e)
        if "truncated" in msg or "broken data stream" in msg or "premature" in msg.lower():
            msg = f"image file is truncated or corrupt ({msg})"
        else:
            msg = f"cannot decode image ({msg})"
        raise AnnotationError(source, msg) from None


def _to_rgb(img) -> "PILImage.Image":
    """Any Pillow mode → 8-bit RGB (16-bit scaled by 1/257, alpha dropped)."""
    import numpy as np
    from PIL import Image

    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img)
        if img.mode == "F":
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        elif arr.max(initial=0) > 255 or img.mode.startswith("I;16"):
            arr = (np.clip(arr, 0, 65535).astype(np.uint32) * 255 + 32767) // 65535  # 0..65535 → 0..255
            arr = arr.astype(np.uint8)
        else:
            arr = arr.astype(np.uint8)
        return Image.fromarray(np.stack([arr] * 3, axis=-1), "RGB")
    if img.mode in ("P", "PA") and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def _exif_upright(img, orientation: int):
    from PIL import ImageOps

    if orientation == 1:
        return img
    return ImageOps.exif_transpose(img)


def upright_size(width: int, height: int, orientation: int) -> Tuple[int, int]:
    """(height, width) after applying the EXIF orientation to a ``width`` x ``height`` grid."""
    return (width, height) if orientation in _SWAPS_AXES else (height, width)


def read_bytes(path: Union[str, os.PathLike], source: Optional[str] = None) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise AnnotationError(source or path, f"image file not found: {os.fspath(path)}") from None
    except IsADirectoryError:
        raise AnnotationError(source or path, f"image path is a directory: {os.fspath(path)}") from None
    except OSError as e:
        raise AnnotationError(source or path, f"cannot read image file {os.fspath(path)}: {e.strerror}") from None


def image_size(path: Union[str, os.PathLike, None] = None, data: Optional[bytes] = None,
               source: Optional[str] = None) -> Tuple[int, int]:
    """Upright ``(height, width)`` from the image header (and EXIF), without decoding pixels."""
    if data is None:
        data = read_bytes(path, source)
    img = _open(data, source or (None if path is None else os.fspath(path)))
    w, h = img.size
    return upright_size(w, h, _orientation(img))


def jpeg_is_complete(data: bytes) -> bool:
    """True when the JPEG's marker segments lead to a scan followed by an end-of-image marker.

    Entropy-coded data cannot contain ``FF D9`` (0xFF bytes are stuffed), so an EOI after the
    first start-of-scan means the file was not cut short; an EXIF thumbnail's EOI sits before
    the scan and does not count. Trailing bytes after the EOI are allowed.
    """
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return False
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        seg_end = i + 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xDA:  # start of scan
            return data.rfind(b"\xff\xd9") >= seg_end
        i = seg_end
    return False


def encode_for_record(data: bytes, source: Optional[str] = None) -> EncodedImage:
    """Validate ``data`` by decoding it and return the bytes to store (see module docstring).

    Raises `AnnotationError` naming ``source`` for unreadable, corrupt or truncated images.
    """
    img = _open(data, source)
    fmt = img.format
    orientation = _orientation(img)
    w, h = img.size
    if orientation == 1 and fmt in ("JPEG", "MPO") and img.mode in ("L", "RGB"):
        # Pass-through: Pillow has parsed the headers; check the scan data is complete.
        if not jpeg_is_complete(data):
            raise AnnotationError(source, "image file is truncated or corrupt (no end-of-image marker "
                                          "after the scan data)")
        return EncodedImage(data, "jpeg", h, w, orientation)
    _load(img, source)
    if orientation == 1 and fmt == "PNG" and img.mode in ("L", "RGB"):
        return EncodedImage(data, "png", h, w, orientation)
    reasons = []
    if orientation != 1:
        reasons.append(f"EXIF orientation {orientation} applied")
    if img.mode not in ("L", "RGB"):
        reasons.append(f"{img.mode} converted to 8-bit RGB")
    if fmt not in ("JPEG", "MPO", "PNG"):
        reasons.append(f"{fmt} stored as PNG")
    rgb = _to_rgb(_exif_upright(img, orientation))
    buf = io.BytesIO()
    if fmt in ("JPEG", "MPO"):
        rgb.save(buf, format="JPEG", quality=JPEG_QUALITY)
        out_fmt = "jpeg"
    else:
        rgb.save(buf, format="PNG", compress_level=3)
        out_fmt = "png"
    return EncodedImage(buf.getvalue(), out_fmt, rgb.height, rgb.width, orientation, "; ".join(reasons))


def decode_rgb(data: bytes, source: Optional[str] = None, apply_exif: bool = True) -> "np.ndarray":
    """Encoded image bytes → upright uint8 ``(H, W, 3)`` RGB array."""
    import numpy as np

    img = _open(data, source)
    _load(img, source)
    if apply_exif:
        img = _exif_upright(img, _orientation(img))
    return np.asarray(_to_rgb(img))


def load_rgb(path: Union[str, os.PathLike]) -> "np.ndarray":
    """An image file → upright uint8 ``(H, W, 3)`` RGB array (EXIF orientation applied)."""
    return decode_rgb(read_bytes(path), source=os.fspath(path))


def check_size(image: EncodedImage, height: int, width: int, source: Optional[str]) -> None:
    """Refuse an annotation whose declared size differs from the upright image."""
    if (image.height, image.width) == (height, width):
        return
    msg = (f"image size differs from the annotation: annotation says {width}x{height} (WxH), "
           f"the image is {image.width}x{image.height}")
    if image.orientation in _SWAPS_AXES and (image.width, image.height) == (height, width):
        msg += (f" after applying its EXIF orientation {image.orientation}; the annotation matches the "
                "stored sideways pixels, but tfod-seg takes annotations in the upright frame (as LabelMe "
                "and browsers show the image). Re-annotate the upright image or strip the EXIF "
                "Orientation tag")
    raise AnnotationError(source, msg)
