"""The job's work, shared by every handler of lab `chunks`: one item at a time.

An item is {"id": "rec-007", "ms": 40}: `ms` is how long its work takes (here: waiting, like a
call to a slow API). The lesson scales time down: a 2-second timeout stands for Lambda's 15
minutes, so an item of 40 ms stands for 18 seconds of real work.
"""

import time


def process(item):
    """Do one item's work; returns its id."""
    time.sleep(item["ms"] / 1000)
    return item["id"]


def process_all(items):
    """Do every item in order; returns {"ids": [...], "ms": total estimated ms}."""
    return {"ids": [process(item) for item in items], "ms": sum(item["ms"] for item in items)}
