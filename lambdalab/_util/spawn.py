"""Child processes that die with this one: `setpriv --pdeathsig`, started from one long-lived thread.

On Linux the kernel sends a child its parent-death signal (PR_SET_PDEATHSIG) when the *thread*
that forked it exits, not the process. So children that must live exactly as long as their
owner are forked by a `Spawner`'s own thread, never by a short-lived caller thread (a notebook
cell, an invocation thread). `guarded` sets the signal with util-linux's `setpriv`, which, unlike
a `preexec_fn`, keeps `subprocess` on its fast vfork path. Without setpriv (macOS) the argv runs
unguarded, and the callers' own fallbacks apply (a worker polls its parent itself).
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def guarded(argv: Sequence[str], death_signal: str = "KILL", setpriv_options: Sequence[str] = ()) -> list[str]:
    """`argv` sent `death_signal` should this process die first (on Linux, with setpriv).

    `setpriv_options` go to setpriv as well (e.g. `--reuid`), and only when it is there.
    """
    if SETPRIV is None:
        return list(argv)
    return [SETPRIV, "--pdeathsig", death_signal, *setpriv_options, "--", *argv]


class Spawner:
    """Starts processes (`subprocess.Popen`) from one long-lived thread; see the module docstring."""

    def __init__(self, name: str = "lambdalab-spawner") -> None:
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                break
            kwargs, box, ready = job
            try:
                box.append(subprocess.Popen(**kwargs))
            except BaseException as e:  # handed back to the caller
                box.append(e)
            ready.set()
        while not self._queue.empty():  # jobs queued behind close(): refuse, don't hang their callers
            job = self._queue.get_nowait()
            if job is not None:
                job[1].append(RuntimeError("the spawner is closed"))
                job[2].set()

    def spawn(self, **kwargs: Any) -> subprocess.Popen:
        """`subprocess.Popen(**kwargs)`, run on the spawner's thread."""
        box: list = []
        ready = threading.Event()
        with self._lock:
            if self._closed:
                raise RuntimeError("the spawner is closed")
            self._queue.put((kwargs, box, ready))
        ready.wait()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def close(self) -> None:
        """Stop the thread: on Linux, whatever it started with `guarded` gets its death signal."""
        with self._lock:
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout=2)


_shared: Spawner | None = None
_shared_lock = threading.Lock()


def shared_spawner() -> Spawner:
    """The process-wide spawner, for children that live until this process exits."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Spawner("lambdalab-shared-spawner")
        return _shared
