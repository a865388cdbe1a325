"""Lesson 08 demo: the smallest handler. Its INIT is the runtime's own start-up and nothing else."""


def handler(event, context):
    return {"handler": "minimal"}
