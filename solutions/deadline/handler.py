"""Lab `deadline`: a batch job that stops cleanly before Lambda's timeout.

Lambda kills an invocation that runs past the function's timeout: whatever the handler was
doing is lost, and the caller gets `Sandbox.Timedout` instead of a result. A batch handler that
may not finish in time must watch the clock itself. `context.get_remaining_time_in_millis()`
says how long is left; before each item, the handler checks that the slowest item so far (plus
a margin for returning) still fits, and otherwise returns early with the items it did not
reach, so that the caller (or the next run) can carry on where it stopped.

The event: {"items": [{"id": "job-01", "ms": 100}, ...]}; each item takes `ms` milliseconds.
The result: {"processed": [ids...], "remaining": [items not processed, as given], "complete": bool}.
"""

import time

# Time kept back for returning the result once the handler decides to stop.
SAFETY_MS = 200


def process(item):
    """The work for one item (here: waiting `ms` milliseconds, like a call to a slow API)."""
    time.sleep(item.get("ms", 100) / 1000)
    return item["id"]


def lambda_handler(event, context):
    items = event["items"]
    processed = []
    slowest_ms = 0.0
    for index, item in enumerate(items):
        # BEGIN SOLUTION deadline
        # Before starting `item`, make sure it can still finish before Lambda's timeout,
        # assuming it takes as long as the slowest item so far and keeping SAFETY_MS for returning. The
        # context object can tell how much time is left: look up its methods in AWS's
        # "Using the Lambda context object" page for Python. If the item cannot fit, stop: say in
        # the log how many items are left, and return what `result` needs for the next run.
        left_ms = context.get_remaining_time_in_millis()
        if left_ms < slowest_ms + SAFETY_MS:
            print(f"stopping with {left_ms} ms left: {len(items) - index} items for the next run")
            # Stretch goal: say how much time was left, so SAFETY_MS can be tuned from real runs.
            return {**result(processed, items[index:]), "left_ms": left_ms}
        # END SOLUTION
        started = time.perf_counter()
        processed.append(process(item))
        slowest_ms = max(slowest_ms, (time.perf_counter() - started) * 1000)
    return result(processed, [])


def result(processed, remaining):
    """What the caller gets: what was done, and what is left for the next run."""
    return {"processed": processed, "remaining": remaining, "complete": not remaining}
