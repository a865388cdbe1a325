"""The worker's entry point: ``python -m lambdalab.runtime.ric module.function``.

awslambdaric's __main__.py, plus a watchdog that ends the worker as soon as the local runtime
that started it is gone, so that no worker outlives it.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from .bootstrap import run
from .client import LambdaRuntimeClient

_PR_SET_PDEATHSIG = 1
_PARENT_POLL_S = 0.5


def _request_parent_death_signal() -> None:
    """On Linux, have the kernel SIGKILL this process when its parent dies (works even while stopped)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass  # the polling below still covers it


def _watch_parent(parent_pid: int) -> None:
    _request_parent_death_signal()
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    os._exit(0)


def start_parent_watchdog() -> None:
    """Exit as soon as the runtime that started this worker is gone, so no worker outlives it."""
    parent_pid = os.getppid()  # read before the thread starts, so a parent dying meanwhile is noticed
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="lambdalab-parent-watchdog", daemon=True).start()


def main(args: list[str]) -> None:
    try:
        handler = args[1]
    except IndexError:
        raise ValueError("Handler not set")
    address = os.environ["AWS_LAMBDA_RUNTIME_API"]
    start_parent_watchdog()
    run(handler, LambdaRuntimeClient(address))


if __name__ == "__main__":
    main(sys.argv)
