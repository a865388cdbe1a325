"""Lesson 03 demo: /tmp belongs to one execution environment.

Each environment has its own /tmp (`tempfile.gettempdir()`: /tmp on Lambda and in the local
sandbox; a private directory named by TMPDIR on a machine without the sandbox). Files written
there are still present for the next invocation in the same environment, invisible to every
other environment and to the machine, and gone when the environment is.
"""

import os
import tempfile
import time


def lambda_handler(event, context):
    scratch = tempfile.gettempdir()
    with open(os.path.join(scratch, f"{context.aws_request_id[:8]}.txt"), "w") as f:
        f.write(str(event))
    time.sleep(event.get("hold_ms", 0) / 1000)  # lets a caller make requests overlap
    return {"tmp": scratch, "files": sorted(os.listdir(scratch))}
