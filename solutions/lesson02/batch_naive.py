"""Lesson 02 demo: a batch handler that ignores its deadline.

It works through every item whatever the time. When the batch needs longer than the
function's timeout, Lambda stops the invocation mid-batch: the caller gets `Sandbox.Timedout`
and no word about which items were done.
"""

import time


def lambda_handler(event, context):
    processed = []
    for item in event["items"]:
        time.sleep(item.get("ms", 100) / 1000)
        processed.append(item["id"])
        print(f"done {item['id']}")
    return {"processed": processed, "remaining": [], "complete": True}
