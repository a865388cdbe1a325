# Generated from solutions/lesson02/logs_demo.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check lesson02`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Lesson 02 demo: print() and the logging module both land in the invocation's log."""

import logging

logger = logging.getLogger()
# The root logger starts at Python's default level, WARNING (unless the function's log level is
# configured in Lambda's logging settings), so INFO lines would be dropped without this.
logger.setLevel(logging.INFO)

print("module imported: this line belongs to INIT, before the first START")


def lambda_handler(event, context):
    print(f"print(): handling order {event.get('order')}")
    logger.info("logging.info(): %d items", len(event.get("items", [])))
    logger.warning("logging.warning(): stock is low")
    print("a multi-line print\nbecomes one line per newline")
    return {"logged": True}
