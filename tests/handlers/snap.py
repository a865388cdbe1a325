"""A module with init-time state, to show what a snapshot restore shares and what its hooks renew."""

import os
import secrets

from snapshot_restore_py import register_after_restore

init_token = secrets.token_hex(8)  # made once at INIT: every restored environment inherits it
restored_token = None
init_pid = os.getpid()


@register_after_restore
def _renew():
    global restored_token
    restored_token = secrets.token_hex(8)


def handler(event, context):
    return {"init_token": init_token, "restored_token": restored_token, "init_pid": init_pid,
            "pid": os.getpid(), "init_type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
