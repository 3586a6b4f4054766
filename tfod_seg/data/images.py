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
import threading
from typing import TYPE_CHECKING, Optional, Tuple, Union

from tfod_seg import io as fileio
from tfod_seg.errors import AnnotationError, UserError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image as PILImage

EXIF_ORIENTATION = 0x0112
# Orientations 5-8 involve a 90 degree turn: width and height swap.
_SWAPS_AXES = (5, 6, 7, 8)
JPEG_QUALITY = 95
# Images with more pixels are refused (a counted skip), as Pillow refuses decompression bombs;
# its default limit. `set_max_pixels` (the CLI's --max-pixels) changes it.
DEFAULT_MAX_PIXELS = 89_478_485
_max_pixels: Optional[int] = DEFAULT_MAX_PIXELS


_PIL_LOCK = threading.Lock()


def set_max_pixels(limit: Optional[int]) -> None:
    """Refuse images with more than ``limit`` pixels (``None`` or 0: no limit)."""
    global _max_pixels
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise UserError(f"--max-pixels must be a non-negative integer, got {limit!r}")
    _max_pixels = limit or None


def max_pixels() -> Optional[int]:
    return _max_pixels


def check_pixels(width: int, height: int, source: Optional[str]) -> None:
    """Raise `AnnotationError` when a ``width`` x ``height`` image is over the pixel limit."""
    if _max_pixels and width * height > _max_pixels:
        raise AnnotationError(source, f"image is {width}x{height} = {width * height} pixels, over the limit of "
                                      f"{_max_pixels} (a decompression bomb?); raise it with --max-pixels")


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
    """Open (headers only) and refuse images over the pixel limit before any decoding."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        # Pillow's own bomb check (a module-wide setting) is replaced by `check_pixels` below,
        # which names the image and honours --max-pixels; the lock keeps the switch per call.
        with _PIL_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                img = Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = saved
        check_pixels(img.size[0], img.size[1], source)
        return img
    except UnidentifiedImageError:
        raise AnnotationError(source, "not an image file Pillow can read (unknown or corrupt format)") from None
    except (OSError, ValueError, SyntaxError) as e:  # Pillow raises these for corrupt headers
        if "runcated" in str(e):
            raise AnnotationError(source, f"image file is truncated or corrupt ({e})") from None
        raise AnnotationError(source, f"cannot read image header: {e}") from None


def open_image(data: bytes, source: Optional[str] = None) -> "PILImage.Image":
    """A Pillow image from encoded bytes, headers read and the pixel limit checked (pixels are
    decoded on first use); problems raise `AnnotationError` naming ``source``."""
    return _open(data, source)


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


class _ReadError(UserError):
    pass


def read_bytes(path: Union[str, os.PathLike], source: Optional[str] = None) -> bytes:
    """The bytes of an image file (local or URL); problems raise `AnnotationError` naming
    ``source`` (the annotation) and the image path."""
    p = os.fspath(path)
    try:
        return fileio.read_bytes(p, _ReadError, "image file")
    except _ReadError as e:
        msg = str(e)
        if msg.startswith(p + ": "):
            msg = msg[len(p) + 2:]
        if msg == "image file not found":
            msg = f"image file not found: {p}"
        elif msg.startswith("is a directory"):
            msg = f"image path is a directory: {p}"
        else:
            msg = f"{msg}: {p}"
        raise AnnotationError(source or p, msg) from None


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
