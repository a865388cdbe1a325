"""The job to power-tune: lesson 04's `make_thumbnail` on an image made at INIT, no S3 needed.

The thumbnail service's real handler reads from S3 and writes to S3; here we want only its CPU
work, the same on every invocation. So INIT draws one PNG (a Mandelbrot set: no file, no
download), and each invocation turns it into a thumbnail with `make_thumbnail` from
`thumbnail/thumbnail.py`: decode the PNG, shrink it with Lanczos filtering, encode a PNG.
That is pure CPU, the kind of work whose speed follows Lambda's memory setting.

`IMAGE_SIZE` (environment, default "800x600") sets the source image's size; the event may
set `max_size` (default [200, 200]).
"""

import io
import os

from PIL import Image

# The deployment package holds a copy of thumbnail.py beside this file: the course keeps one
# copy, in the thumbnail lab of the same track, and builds it in (`package(..., include=...)`).
from thumbnail import make_thumbnail


def _image_size() -> tuple[int, int]:
    text = os.environ.get("IMAGE_SIZE", "800x600")
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"IMAGE_SIZE {text!r} must look like 800x600") from None
    if not (16 <= width <= 4000 and 16 <= height <= 4000):
        raise ValueError(f"IMAGE_SIZE {text!r}: each side must be 16-4000 pixels")
    return width, height


def _png(size: tuple[int, int]) -> bytes:
    image = Image.effect_mandelbrot(size, (-2.2, -1.2, 1.0, 1.2), 120).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


IMAGE_SIZE = _image_size()
IMAGE = _png(IMAGE_SIZE)  # made once, at INIT: the invocations measure only the thumbnail


def lambda_handler(event, context):
    max_size = tuple((event or {}).get("max_size", (200, 200)))
    thumbnail, content_type = make_thumbnail(IMAGE, max_size)
    with Image.open(io.BytesIO(thumbnail)) as result:
        width, height = result.size
    return {"source": list(IMAGE_SIZE), "source_bytes": len(IMAGE), "thumbnail": [width, height],
            "thumbnail_bytes": len(thumbnail), "content_type": content_type}
