"""Lesson 06: the thumbnail itself (Pillow), shared by the lesson's handlers.

A JPEG at most 160 x 160 pixels, upright (EXIF orientation applied), RGB. Making a thumbnail
of a thumbnail gives the same size again, so a function that keeps thumbnailing its own
output never runs out of work: the loop costs the same on every hop.
"""

import io

from PIL import Image, ImageOps

SIZE = (160, 160)


def make_thumbnail(data: bytes, size: tuple[int, int] = SIZE) -> bytes:
    """The JPEG thumbnail of an image given as bytes (any format Pillow reads)."""
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail(size)
        out = io.BytesIO()
        upright.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()
