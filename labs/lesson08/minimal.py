# Generated from solutions/lesson08/minimal.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check lesson08`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Lesson 08 demo: the smallest handler. Its INIT is the runtime's own start-up and nothing else."""


def handler(event, context):
    return {"handler": "minimal"}
