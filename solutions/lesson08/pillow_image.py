"""Lesson 08 demo: a handler that imports Pillow, as an image-resizing function would."""

from PIL import Image


def handler(event, context):
    image = Image.new("RGB", (64, 64), "white")
    return {"handler": "pillow_image", "size": list(image.size)}
