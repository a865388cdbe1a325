# Generated from solutions/thumbnail/thumbnail.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check thumbnail`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Lab `thumbnail`, the image half: `make_thumbnail(data)` turns the bytes of an uploaded image
into a small thumbnail. It is a pure function (bytes in, bytes out, no AWS), so you can test it
on your laptop; `handler.py` is the Lambda half that moves bytes between S3 buckets.

Hostile uploads are the normal case for a public upload bucket, so every check that can refuse
an image runs BEFORE the pixels are decoded:

1. the file's size (`MAX_FILE_BYTES`);
2. its format, sniffed from its first bytes (only the raster formats in `FORMATS`);
3. the pixel count its header declares (`MAX_DECLARED_PIXELS`), and the memory that decoding
   would really take after JPEG draft mode shrinks the work (`DECODE_BUDGET_BYTES`, from the
   function's memory size): a 40 KB PNG can declare 30,000 x 30,000 pixels, 2.7 GB once
   decoded (a decompression bomb).

Every refusal is an `ImageRejected` (a `ValueError`) whose class names the reason and whose
message says what was wrong, e.g. `TooManyPixels: declares 30000x30000 pixels (900.0 MP) ...`.
"""

from __future__ import annotations

import io
import math
import os
import sys

from PIL import Image, UnidentifiedImageError

MAX_FILE_BYTES = 20 * 1024 * 1024
# No phone or camera sells more than ~100 MP; more than that in a header is a bomb or a scan.
MAX_DECLARED_PIXELS = 100_000_000
# The memory decoding may use: the function's memory (Lambda sets the variable) less what
# Python, boto3 and Pillow hold (measured: about 55 MB) and some headroom; each image's own
# file bytes are taken off this too (check_pixel_budget).
MEMORY_MB = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
RESERVED_MB = 72
DECODE_BUDGET_BYTES = max(16, MEMORY_MB - RESERVED_MB) * 2**20
# Raster formats we accept (Pillow's names). JPEG includes MPO, the multi-picture JPEG that
# many phones write: Pillow opens those through its JPEG plugin and reports the format "MPO".
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP")
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that shows the picture upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# What Pillow raises on bad image data: truncated or corrupt files, bad chunks, bad headers.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                  ZeroDivisionError, MemoryError)


class ImageRejected(ValueError):
    """A permanent failure: this upload can never become a thumbnail, so retrying is pointless.

    `reason` is the short name of the failure (the class name); the message says what was wrong.
    """

    @property
    def reason(self) -> str:
        return type(self).__name__


class EmptyFile(ImageRejected):
    """The object has no bytes at all."""


class FileTooLarge(ImageRejected):
    """The object is bigger than `MAX_FILE_BYTES`."""


class NotAnImage(ImageRejected):
    """The bytes are not one of the raster formats in `FORMATS` (text, SVG, PDF, ...)."""


class CorruptImage(ImageRejected):
    """The file starts like an image but its data is truncated or damaged."""


class TooManyPixels(ImageRejected):
    """The header declares more pixels than the budget allows: refused before decoding."""


class DecompressionBomb(ImageRejected):
    """A small file that would expand to far more memory than it looks (pixels or metadata)."""


def make_thumbnail(data: bytes, max_size: tuple[int, int] = (200, 200)) -> tuple[bytes, str]:
    """The thumbnail of the image in `data`, fitted inside `max_size` (width, height) keeping its
    aspect ratio, shown upright (EXIF orientation applied), and its content type.

    JPEG stays JPEG, WebP stays WebP, everything else becomes PNG (which keeps transparency).
    Raises an `ImageRejected` subclass naming the reason when the data cannot be a thumbnail.
    """
    _check_max_size(max_size)
    im = open_image(data)
    check_pixel_budget(im, max_size, file_bytes=len(data))
    out_format = "JPEG" if im.format in ("JPEG", "MPO") else "WEBP" if im.format == "WEBP" else "PNG"
    source_format, source_mode, icc_profile = im.format, im.mode, im.info.get("icc_profile")
    try:
        im.load()
        upright = _UPRIGHT.get(_orientation(im))
        if upright is not None:
            im = im.transpose(upright)
        im = displayable(im)
        im = resize_to_fit(im, max_size)
    except ImageRejected:
        raise
    except _DECODE_ERRORS as e:
        raise CorruptImage(f"corrupt or truncated {source_format} image: {_describe(e)}") from None
    if _colour_space(source_mode) != _colour_space(im.mode):
        icc_profile = None  # e.g. a CMYK profile cannot describe the RGB thumbnail
    return encode(im, out_format, icc_profile), CONTENT_TYPES[out_format]


def _colour_space(mode: str) -> str:
    if mode in ("1", "L", "LA", "La", "I", "F") or mode.startswith("I;16"):
        return "grey"
    return "rgb" if mode in ("RGB", "RGBA", "RGBa", "RGBX", "P", "PA") else mode


def _check_max_size(max_size: tuple[int, int]) -> None:
    if (not isinstance(max_size, tuple) or len(max_size) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in max_size)):
        raise TypeError(f"max_size must be a (width, height) tuple of positive ints, not {max_size!r}")


def open_image(data: bytes) -> Image.Image:
    """Pillow's lazy view of `data`: format, mode and size come from the header; no pixel is decoded."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    if len(data) == 0:
        raise EmptyFile("the file is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise FileTooLarge(f"the file is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,} bytes")
    # Pillow's own bomb limit (a process-wide setting) would refuse giant headers before we see
    # their size; lift it for this header read only: check_pixel_budget is stricter and says more.
    pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        im = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        claimed = _signature(bytes(data[:16]))
        if claimed:
            raise CorruptImage(f"starts like a {claimed} file but its header is damaged or missing") from None
        raise NotAnImage(_not_an_image(bytes(data[:256]))) from None
    except _DECODE_ERRORS as e:
        if "decompressed data too large" in str(e).lower():
            raise DecompressionBomb("a metadata chunk decompresses to more than Pillow's limit "
                                    "(a compressed-text bomb)") from None
        raise CorruptImage(f"the header is damaged: {_describe(e)}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    if im.width < 1 or im.height < 1:
        raise CorruptImage(f"the header declares an empty {im.width}x{im.height} image")
    return im


_SIGNATURES = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
               (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))


def _signature(head: bytes) -> str | None:
    """The format whose magic bytes `head` starts with, if any (WebP: RIFF....WEBP)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in _SIGNATURES if head.startswith(magic)), None)


def _not_an_image(head: bytes) -> str:
    supported = ", ".join(FORMATS)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and b"<svg" in text or text.startswith(b"<?xml") and b"svg" in text:
        return f"an SVG drawing is vector graphics, not a raster image (supported: {supported})"
    if text.startswith(b"%pdf"):
        return f"a PDF document, not an image (supported: {supported})"
    return f"not a supported image: the data starts with {head[:12]!r} (supported: {supported})"


def check_pixel_budget(im: Image.Image, max_size: tuple[int, int], file_bytes: int = 0) -> None:
    """Refuse images whose declared size, or whose decode even after JPEG draft, is over budget
    (the file itself, `file_bytes`, stays in memory meanwhile and is taken from the budget).

    For a JPEG this also switches on draft mode: libjpeg then decodes at 1/2, 1/4 or 1/8 scale
    (DCT scaling), the largest reduction that still leaves twice the thumbnail's size to resample.
    """
    declared = im.width * im.height
    if declared > MAX_DECLARED_PIXELS:
        raise TooManyPixels(f"declares {im.width}x{im.height} pixels ({declared / 1e6:.1f} MP); "
                            f"the budget is {MAX_DECLARED_PIXELS / 1e6:.0f} MP (refused before decoding)")
    if im.format in ("JPEG", "MPO"):
        box_w, box_h = max_size if _orientation(im) < 5 else max_size[::-1]  # 5-8 swap the sides
        shrink = max(im.width / box_w, im.height / box_h)  # how much smaller the thumbnail is
        im.draft(None, (math.ceil(im.width * 2 / shrink), math.ceil(im.height * 2 / shrink)))
    needed = im.width * im.height * working_bytes_per_pixel(im)
    available = DECODE_BUDGET_BYTES - file_bytes
    if needed > available:
        raise TooManyPixels(f"decoding {im.width}x{im.height} {im.mode} pixels needs about {needed / 2**20:.0f} MB; "
                            f"{available / 2**20:.0f} MB of this function's {MEMORY_MB} MB are free for it "
                            "(refused before decoding)")


def working_bytes_per_pixel(im: Image.Image) -> int:
    """Peak bytes per pixel while making the thumbnail: Pillow holds 8-bit images at up to 4
    bytes a pixel, converting needs a second full-size image, and resizing with transparency a
    premultiplied third (see `displayable` and `resize_to_fit`)."""
    if im.format == "WEBP":
        return 24  # libwebp decodes into its own buffer, which Pillow then copies (measured)
    if im.mode in ("I", "F"):
        return 14
    if im.mode.startswith("I;16"):
        return 6
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa", "CMYK", "YCbCr", "LAB", "HSV") or "transparency" in im.info:
        return 9
    return 5


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8; 1 = upright). Damaged EXIF is ignored: the pixels are still fine."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def displayable(im: Image.Image) -> Image.Image:
    """`im` in one of the modes thumbnails are made in: L, LA, RGB or RGBA (8 bits per channel)."""
    mode = im.mode
    if mode in ("L", "RGB") and "transparency" not in im.info or mode in ("LA", "RGBA"):
        return im
    if mode in ("I;16", "I;16L", "I;16N", "I;16B"):
        # 16-bit samples: keep the high byte (convert("L") would clip everything above 255).
        raw = "L;16B" if mode == "I;16B" or mode == "I;16N" and sys.byteorder == "big" else "L;16"
        return Image.frombytes("L", im.size, im.tobytes(), "raw", raw)
    if mode in ("I", "F"):
        # 32-bit samples (scientific TIFFs): 0-1 floats or 16-bit ranges, scaled to 0-255.
        high = im.getextrema()[1]
        scale = 255.0 if mode == "F" and high <= 1.0 else 1 / 256 if high > 255 else 1.0
        return im.point(lambda v: v * scale).convert("L")
    if mode in ("P", "PA", "L", "RGB", "1"):
        # Palette and 1-bit images resize badly; "transparency" (a tRNS chunk) becomes alpha.
        has_alpha = mode == "PA" or "transparency" in im.info
        if mode == "1":
            return im.convert("L")
        return im.convert("RGBA" if has_alpha else ("L" if mode == "L" else "RGB"))
    if mode == "La":
        return im.convert("LA")
    if mode == "RGBa":
        return im.convert("RGBA")
    # CMYK, YCbCr, LAB, HSV, RGBX: colour images without alpha.
    return im.convert("RGB")


def resize_to_fit(im: Image.Image, max_size: tuple[int, int]) -> Image.Image:
    """`im` shrunk to fit inside `max_size` (width, height), keeping its aspect ratio.

    An image that already fits is returned as it is: a thumbnail never enlarges.
    """
    # One factor for both sides, the largest that fits max_size, never more than 1.
    width, height = im.size
    scale = min(max_size[0] / width, max_size[1] / height, 1.0)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == im.size:
        return im
    # reducing_gap=1.0: shrink by the whole factor with a box filter first, then LANCZOS the rest
    # (as libvips does): twice as fast on a drafted photo, and 50 dB PSNR against LANCZOS alone.
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.0)


def encode(im: Image.Image, out_format: str, icc_profile: bytes | None = None) -> bytes:
    """The whole encoded file, in memory (so a failure can never leave half a thumbnail anywhere).

    EXIF (which can hold GPS coordinates) is not copied: the orientation is already applied.
    A colour profile is kept so that, e.g., Display P3 photos keep their colours.
    """
    if out_format == "JPEG" and im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    options: dict = {"JPEG": {"quality": 85, "optimize": True},
                     "WEBP": {"quality": 80, "method": 4},
                     "PNG": {"optimize": True}}[out_format]
    # Said explicitly: Pillow's PNG writer would otherwise copy both from the source's info.
    options["icc_profile"] = icc_profile or None
    options["exif"] = b""
    buffer = io.BytesIO()
    im.save(buffer, out_format, **options)
    return buffer.getvalue()


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text[:200]
