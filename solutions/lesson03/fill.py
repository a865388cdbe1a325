"""Lesson 03 demo: /tmp has the size the function configures (EphemeralStorage, 512 MB by default).

The handler writes `mb` megabytes into /tmp, one megabyte at a time, and reports how far it got:
past the configured size the write fails with ENOSPC ("No space left on device"), as on Lambda.
The file is removed either way, so the next invocation starts with the space free again.
"""

import errno
import os
import tempfile

MB = b"\0" * (1 << 20)
FILL = os.path.join(tempfile.gettempdir(), "fill")  # /tmp; TMPDIR where the machine has no sandbox


def lambda_handler(event, context):
    written, error = 0, None
    try:
        with open(FILL, "wb") as f:
            for _ in range(event["mb"]):
                f.write(MB)
                written += 1
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        error = errno.errorcode.get(e.errno, str(e.errno))
    finally:
        if os.path.exists(FILL):
            os.remove(FILL)
    return {"asked MB": event["mb"], "written MB": written, "error": error}
