# Generated from solutions/lesson01/worker.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check lesson01`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""A job that takes `work_ms` milliseconds (default 300) and fails when the event says "fail".

Lesson 01 calls it synchronously and asynchronously to show who waits, who retries, and what
the caller gets back.
"""

import time


class JobFailed(Exception):
    """The job could not be done (on purpose, here)."""


def lambda_handler(event, context):
    time.sleep(event.get("work_ms", 300) / 1000)
    if event.get("fail"):
        raise JobFailed(f"job {event.get('job')} failed on purpose")
    return {"job": event.get("job"), "status": "done"}
