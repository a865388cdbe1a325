"""The inspector: logs every event it receives, whole, and says what it saw.

Aim any trigger at it to learn the shape of that trigger's events: the event is printed on
one line starting with `EVENT `, so it lands in CloudWatch Logs. `WORK_MS` (an environment
variable, default 0) makes it pretend to work that long, so a timeline shows who waits for it.
"""

import json
import os
import time

WORK_MS = int(os.environ.get("WORK_MS", "0"))


def lambda_handler(event, context):
    print("EVENT " + json.dumps(event))
    time.sleep(WORK_MS / 1000)
    keys = sorted(event) if isinstance(event, dict) else type(event).__name__
    return {"inspected_by": context.aws_request_id, "top_level_keys": keys}
