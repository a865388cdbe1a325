"""Lesson 08 demo: the minimal handler again, alone in its folder: a lean deployment package."""


def handler(event, context):
    return {"handler": "minimal"}
