# Generated from solutions/lesson03/counter.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check lesson03`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Lesson 03 demo: module-level state lives as long as its execution environment.

Lambda imports this module once per environment (INIT); every invocation that environment
serves then sees the same `invocations` counter. A new environment starts again from zero.
"""

import os
import time

invocations = 0  # calls served by this execution environment
environment_started = time.time()  # when INIT ran in this environment


def lambda_handler(event, context):
    global invocations
    invocations += 1
    # A caller can ask the handler to stay busy, so that a burst of requests overlaps.
    time.sleep(event.get("hold_ms", 0) / 1000)
    return {"count": invocations, "pid": os.getpid(), "environment_started": environment_started}
