"""Test images for the thumbnail lesson: realistic photos, awkward formats and hostile files.

This module owns every image the course makes up: a procedural landscape "photo" (smooth sky,
clouds, mountains, textured grass and sensor noise, so that it compresses like a real photo),
EXIF-rotated JPEGs whose quadrants reveal a wrong orientation, CMYK JPEGs, 16-bit PNGs (written
by hand: Pillow cannot save 48-bit PNGs), palette PNGs with transparency, animated GIFs, and
hostile files: decompression bombs, header-only giants, text-chunk bombs, truncated and
corrupted files. It also draws the before/after figures the lesson shows (matplotlib), and
finds the real photos that matplotlib ships as sample data.

All generators are deterministic (seeded) so tests can assert exact sizes.
"""

from __future__ import annotations

import contextlib
import functools
import io
import struct
import textwrap
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

# Upright quadrant colours of the orientation test pictures: top-left, top-right, bottom-left, bottom-right.
QUADRANTS = {"top_left": (220, 30, 30), "top_right": (30, 180, 40),
             "bottom_left": (30, 60, 220), "bottom_right": (240, 220, 30)}
# Each EXIF orientation's display transform and its inverse (how the camera stored the pixels).
_DISPLAY = {
    1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}
_STORE = {**_DISPLAY, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PREVIEW_PIXELS = 16_000_000  # previews never decode more than this (bombs are shown as bytes)


# --- photos ---------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Values in about [-1, 1] that vary smoothly over `cells` (columns, rows) across `size`."""
    coarse = rng.standard_normal((cells[1] + 1, cells[0] + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize(size, Image.Resampling.BICUBIC)) / 2.0


def landscape(width: int = 4000, height: int = 3000, seed: int = 0) -> Image.Image:
    """An RGB "photo": sky with clouds, a sun, two mountain ranges, grass, and sensor noise.

    The scene is composed at half resolution and scaled up; the grass texture and the sensor
    noise are added at full resolution, so the JPEG has a real photo's detail (and file size).
    """
    if width < 16 or height < 16:
        raise ValueError(f"a landscape needs at least 16x16 pixels, not {width}x{height}")
    rng = np.random.default_rng(seed)
    w, h = max(8, width // 2), max(8, height // 2)
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    sky_top, sky_bottom = np.array([40, 90, 170], np.float32), np.array([170, 205, 235], np.float32)
    clouds = np.clip(_smooth_noise(rng, (w, h), (12, 6)) + 0.4 * _smooth_noise(rng, (w, h), (48, 24)), 0, 1)
    image = np.empty((h, w, 3), np.float32)
    for c in range(3):
        sky = sky_top[c] + (sky_bottom[c] - sky_top[c]) * y
        image[:, :, c] = sky + (250 - sky) * clouds * 0.8
    sun = np.exp(-(((x - 0.72) * w) ** 2 + ((y - 0.22) * h) ** 2) / (2 * (0.04 * h) ** 2))
    image += sun[:, :, None] * np.array([80, 70, 30], np.float32)

    def ridge(base: float, roughness: float, cells: int) -> np.ndarray:
        line = _smooth_noise(rng, (w, 1), (cells, 1))[0] + 0.3 * _smooth_noise(rng, (w, 1), (cells * 6, 1))[0]
        return (base + roughness * line) * h

    rows = np.arange(h, dtype=np.float32)[:, None]
    for base, rough, cells, colour in ((0.50, 0.12, 8, (95, 105, 130)), (0.62, 0.08, 14, (60, 80, 70))):
        mask = rows > ridge(base, rough, cells)[None, :]
        shade = 0.85 + 0.15 * _smooth_noise(rng, (w, h), (60, 40))
        image[mask] = (shade[:, :, None] * np.array(colour, np.float32))[mask]
    grass_line = ridge(0.74, 0.03, 20)[None, :]
    grass = np.broadcast_to(rows > grass_line, (h, w))
    depth = np.clip((rows - grass_line) / (0.3 * h), 0, 1)[:, :, None]
    near, far = np.array([70, 140, 40], np.float32), np.array([110, 150, 60], np.float32)
    patches = 30 * _smooth_noise(rng, (w, h), (80, 60))[:, :, None]
    image[grass] = (far + (near - far) * depth + patches)[grass]
    half = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB")
    full = np.asarray(half.resize((width, height), Image.Resampling.BICUBIC)).astype(np.int16)
    grain = rng.standard_normal((height, width), dtype=np.float32)
    # Grass gets coarse texture; everything gets a little sensor noise (the same on all channels).
    grass_full = np.asarray(Image.fromarray(grass.astype(np.uint8) * 255).resize((width, height)), dtype=bool)
    noise = (grain * np.where(grass_full, 16.0, 2.5)).astype(np.int16)
    full += noise[:, :, None]
    return Image.fromarray(np.clip(full, 0, 255).astype(np.uint8), "RGB")


def jpeg(im: Image.Image, quality: int = 90, *, exif_orientation: int | None = None,
         icc_profile: bytes | None = None, **options: Any) -> bytes:
    """`im` encoded as a JPEG file (with an EXIF orientation tag and ICC profile when given)."""
    kwargs: dict[str, Any] = {"quality": quality, **options}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    if icc_profile:
        kwargs["icc_profile"] = icc_profile
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", **kwargs)
    return buffer.getvalue()


def png(im: Image.Image, **options: Any) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, "PNG", **options)
    return buffer.getvalue()


@functools.lru_cache(maxsize=8)
def photo_jpeg(width: int = 4000, height: int = 3000, seed: int = 0, quality: int = 90) -> bytes:
    """A landscape photo as a JPEG file (4000x3000 at quality 90 is about 12 MP and a few MB)."""
    return jpeg(landscape(width, height, seed), quality)


def matplotlib_sample(name: str) -> bytes:
    """A real image shipped with matplotlib: "grace_hopper.jpg" (a photo) or "Minduka_Present_Blue_Pack.png"."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / name
    if not path.is_file():
        raise FileNotFoundError(f"matplotlib has no sample image {name!r} at {path}")
    return path.read_bytes()


# --- awkward but valid images ----------------------------------------------------------------


def quadrants(width: int, height: int) -> Image.Image:
    """An upright picture of four coloured quadrants (see QUADRANTS)."""
    im = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(im)
    w, h = width // 2, height // 2
    draw.rectangle((0, 0, w - 1, h - 1), fill=QUADRANTS["top_left"])
    draw.rectangle((w, 0, width - 1, h - 1), fill=QUADRANTS["top_right"])
    draw.rectangle((0, h, w - 1, height - 1), fill=QUADRANTS["bottom_left"])
    draw.rectangle((w, h, width - 1, height - 1), fill=QUADRANTS["bottom_right"])
    return im


def exif_rotated_jpeg(orientation: int, upright_size: tuple[int, int] = (300, 400)) -> bytes:
    """A JPEG that shows `quadrants(*upright_size)` only when its EXIF `orientation` is applied.

    The stored pixels are transformed the way a camera held sideways stores them, so a
    thumbnailer that ignores EXIF produces a picture with the quadrants in the wrong places.
    """
    if orientation not in _STORE:
        raise ValueError(f"EXIF orientation must be 1-8, not {orientation!r}")
    stored = quadrants(*upright_size)
    if _STORE[orientation] is not None:
        stored = stored.transpose(_STORE[orientation])
    return jpeg(stored, 95, exif_orientation=orientation)


def cmyk_jpeg(size: tuple[int, int] = (640, 480)) -> bytes:
    """A CMYK JPEG (print workflows make them): cyan, magenta, yellow and black quadrants."""
    im = Image.new("CMYK", size)
    draw = ImageDraw.Draw(im)
    w, h = size[0] // 2, size[1] // 2
    for box, ink in (((0, 0, w - 1, h - 1), (255, 0, 0, 0)), ((w, 0, size[0] - 1, h - 1), (0, 255, 0, 0)),
                     ((0, h, w - 1, size[1] - 1), (0, 0, 255, 0)), ((w, h, size[0] - 1, size[1] - 1), (0, 0, 0, 255))):
        draw.rectangle(box, fill=ink)
    return jpeg(im, 95)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_file(width: int, height: int, bit_depth: int, colour_type: int, idat: bytes | None,
              extra: Sequence[bytes] = ()) -> bytes:
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0))
    body = b"".join(extra) + (_chunk(b"IDAT", idat) if idat is not None else b"")
    return _PNG_SIGNATURE + header + body + _chunk(b"IEND", b"")


def png_16bit_rgb(size: tuple[int, int] = (600, 400)) -> bytes:
    """A 48-bit (16 bits per channel) RGB PNG: red rises left to right, blue top to bottom."""
    width, height = size
    red = np.linspace(0, 65535, width, dtype=np.float64)[None, :].repeat(height, 0)
    blue = np.linspace(0, 65535, height, dtype=np.float64)[:, None].repeat(width, 1)
    green = np.full((height, width), 32768.0)
    pixels = np.stack([red, green, blue], axis=2).astype(">u2")
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels.view(np.uint8).reshape(height, -1)], axis=1)
    return _png_file(width, height, 16, 2, zlib.compress(rows.tobytes(), 6))


def png_16bit_grey(size: tuple[int, int] = (600, 400)) -> bytes:
    """A 16-bit greyscale PNG, a horizontal ramp from 0 to 65535 (Pillow opens it as I;16)."""
    width, height = size
    ramp = np.linspace(0, 65535, width).astype("<u2")[None, :].repeat(height, 0)
    return png(Image.fromarray(ramp))


def palette_png_with_transparency(size: tuple[int, int] = (400, 300)) -> bytes:
    """A palette (P) PNG whose background index is transparent (tRNS), with an opaque red disc."""
    im = Image.new("P", size, 0)
    im.putpalette([255, 255, 255, 220, 30, 30] + [0, 0, 0] * 254)
    ImageDraw.Draw(im).ellipse((size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4), fill=1)
    return png(im, transparency=0)


def rgba_png(size: tuple[int, int] = (500, 500)) -> bytes:
    """An RGBA PNG: a blue square with a half-transparent border and a transparent corner."""
    im = Image.new("RGBA", size, (30, 60, 220, 128))
    draw = ImageDraw.Draw(im)
    draw.rectangle((size[0] // 5, size[1] // 5, 4 * size[0] // 5, 4 * size[1] // 5), fill=(30, 60, 220, 255))
    draw.rectangle((0, 0, size[0] // 10, size[1] // 10), fill=(0, 0, 0, 0))
    return png(im)


ANIMATION_COLOURS = [(220, 30, 30), (30, 180, 40), (30, 60, 220), (240, 220, 30)]


def animated_gif(size: tuple[int, int] = (320, 240), frames: int = 4) -> bytes:
    """An animated GIF whose frames are solid colours from ANIMATION_COLOURS, first frame red."""
    images = [Image.new("RGB", size, ANIMATION_COLOURS[i % len(ANIMATION_COLOURS)]) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return buffer.getvalue()


def greyscale_jpeg(size: tuple[int, int] = (800, 600)) -> bytes:
    ramp = np.linspace(0, 255, size[0]).astype(np.uint8)[None, :].repeat(size[1], 0)
    return jpeg(Image.fromarray(ramp, "L"), 90)


# --- hostile files ----------------------------------------------------------------------------


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A real decompression bomb: a tiny 1-bit PNG of `width` x `height` black pixels.

    20,000 x 20,000 is 400 MP (1.2 GB as RGB) in about 50 KB of file.
    """
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row * 1000) for _ in range(height // 1000)]
    parts.append(compressor.compress(row * (height % 1000)))
    parts.append(compressor.flush())
    return _png_file(width, height, 1, 0, b"".join(parts))


def greyscale_bomb(side: int = 6000) -> bytes:
    """A PNG of side x side grey pixels (36 MP at 6000), a few tens of KB: under the declared
    limit of a camera photo but over any sane decode budget."""
    row = b"\x00" * (1 + side)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return _png_file(side, side, 8, 0, data)


def header_only_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG header declaring `width` x `height` RGB pixels, with no pixel data at all."""
    return _png_file(width, height, 8, 2, None)


def header_only_jpeg(width: int = 30_000, height: int = 30_000) -> bytes:
    """The start of a baseline JPEG declaring `width` x `height` pixels, with no scan data."""
    frame = struct.pack(">BHHB", 8, height, width, 3) + b"".join(bytes([i, 0x11, 0]) for i in (1, 2, 3))
    quant = b"\x00" + bytes([1] * 64)
    return (b"\xff\xd8" + b"\xff\xdb" + struct.pack(">H", 2 + len(quant)) + quant
            + b"\xff\xc0" + struct.pack(">H", 2 + len(frame)) + frame)


def text_chunk_bomb(megabytes: int = 64) -> bytes:
    """A small valid PNG with a zTXt chunk that inflates to `megabytes` MB of text."""
    compressor = zlib.compressobj(9)
    block = b" " * (1024 * 1024)
    text = b"".join(compressor.compress(block) for _ in range(megabytes)) + compressor.flush()
    ztxt = _chunk(b"zTXt", b"Comment\x00\x00" + text)
    pixels = zlib.compress(b"\x00" + b"\x80" * 16)
    return _png_file(16, 1, 8, 0, pixels, extra=[ztxt])


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first `keep` fraction of `data` (an upload cut off mid-way)."""
    if not 0 < keep < 1:
        raise ValueError(f"keep must be between 0 and 1, not {keep!r}")
    return data[: int(len(data) * keep)]


def corrupt_png(size: tuple[int, int] = (300, 200)) -> bytes:
    """A PNG whose compressed pixel data has damaged bytes (its header and CRCs stay plausible)."""
    rng = np.random.default_rng(3)
    data = bytearray(png(Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), "RGB")))
    start = data.index(b"IDAT") + 4
    for offset in range(start + 10, start + 400, 7):
        data[offset] ^= 0x5A
    return bytes(data)


SVG = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
       b'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300">'
       b'<rect width="400" height="300" fill="teal"/><circle cx="200" cy="150" r="80" fill="gold"/></svg>\n')
TEXT = b"Dear diary, today I uploaded a text file and called it holiday.jpg.\n" * 20


# --- showing them ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BeforeAfter:
    """One upload for a before/after figure: a label, the original bytes, the thumbnail bytes (or None)."""

    label: str
    original: bytes
    thumbnail: bytes | None
    note: str = ""  # e.g. the failure reason when there is no thumbnail


@contextlib.contextmanager
def _headers_only() -> Iterator[None]:
    """Lift Pillow's bomb limit while only headers are read, so a bomb can be described by size."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def describe(data: bytes) -> str:
    """'JPEG 4000x3000 RGB, 2.5 MB' for image bytes (from the header alone); the size alone otherwise."""
    size = f"{len(data) / 1e6:.1f} MB" if len(data) >= 100_000 else f"{len(data) / 1e3:.1f} kB"
    try:
        with _headers_only(), Image.open(io.BytesIO(data)) as im:
            return f"{im.format} {im.width}x{im.height} {im.mode}, {size}"
    except Exception:
        return f"not an image, {size}"


def _preview(data: bytes, longest: int = 320) -> Image.Image | None:
    """A small RGBA preview of `data` for plotting, or None for non-images and for anything that
    would decode to more than PREVIEW_PIXELS (EXIF is ignored on purpose: this is the raw file)."""
    try:
        with _headers_only():
            im = Image.open(io.BytesIO(data))
        im.draft("RGB", (longest, longest))
        if im.width * im.height > PREVIEW_PIXELS:
            return None
        im = im.convert("RGBA")
        im.thumbnail((longest, longest))
        return im
    except Exception:
        return None


def show_before_after(samples: Sequence[BeforeAfter], *, figsize_per_column: float = 2.6) -> Any:
    """A matplotlib figure: each upload's stored pixels on top, its thumbnail underneath.

    The top row shows the file as stored (no EXIF rotation), so a sideways phone photo looks
    sideways there and upright below. Thumbnails are drawn at their true pixel size relative
    to a 200x200 box, so you can see how each one fits it.
    """
    import matplotlib.pyplot as plt

    if not samples:
        raise ValueError("show_before_after needs at least one sample")
    fig, axes = plt.subplots(2, len(samples), figsize=(figsize_per_column * len(samples), 5.2), squeeze=False)
    checker = np.indices((20, 20)).sum(axis=0) % 2 * 40 + 200  # shows transparency
    for column, sample in enumerate(samples):
        top, bottom = axes[0][column], axes[1][column]
        preview = _preview(sample.original)
        if preview is None:
            head = "".join(c if c.isprintable() else "·" for c in sample.original[:48].decode("latin-1"))
            top.text(0.5, 0.5, "\n".join(head[i:i + 16] for i in range(0, len(head), 16)) or "(empty)",
                     ha="center", va="center", fontsize=7, family="monospace", transform=top.transAxes)
        else:
            top.imshow(checker, cmap="gray", vmin=0, vmax=255, extent=(0, preview.width, preview.height, 0))
            top.imshow(preview)
        top.set_title(f"{sample.label}\n{describe(sample.original)}", fontsize=8)
        if sample.thumbnail is not None:
            thumb = Image.open(io.BytesIO(sample.thumbnail)).convert("RGBA")
            bottom.imshow(checker, cmap="gray", vmin=0, vmax=255, extent=(0, 200, 200, 0))
            bottom.imshow(thumb, extent=(0, thumb.width, thumb.height, 0))
            bottom.set_xlim(0, 200)
            bottom.set_ylim(200, 0)
            bottom.set_title(f"thumbnail\n{describe(sample.thumbnail)}", fontsize=8)
        else:
            note = "\n".join(textwrap.wrap(sample.note, 26)[:5])
            bottom.text(0.5, 0.5, "no thumbnail\n\n" + note, ha="center", va="center", fontsize=7,
                        color="firebrick", transform=bottom.transAxes)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig
