"""A module whose INIT takes INIT_SLEEP seconds: lets a test act while an environment is starting."""

import os
import time

time.sleep(float(os.environ.get("INIT_SLEEP", "0")))


def handler(event, context):
    time.sleep(event.get("seconds", 0))
    return "done"
