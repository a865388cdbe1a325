"""Lesson 03 demo: what survives a crash. A file in /tmp does; module-level state does not.

`remember` writes a note into /tmp and counts in a module-level variable; `crash` ends the
process as a segfault or `os._exit` would; `look` reports both. After a crash Lambda resets
the environment: a new process imports the module again (the counter starts over) in the
same sandbox, whose /tmp is kept.
"""

import os
import tempfile

NOTE = os.path.join(tempfile.gettempdir(), "note.txt")  # /tmp/note.txt (TMPDIR without the sandbox)
remembered = 0  # module-level: lives exactly as long as this process


def lambda_handler(event, context):
    global remembered
    action = event["action"]
    if action == "remember":
        remembered += 1
        with open(NOTE, "w") as f:
            f.write(f"written by request {context.aws_request_id[:8]}")
    elif action == "crash":
        os._exit(1)  # no exception, no cleanup: the process is simply gone
    note = open(NOTE).read() if os.path.exists(NOTE) else None
    return {"module counter": remembered, "note in /tmp": note}
