"""Snapshot-restore starts, the idea behind Lambda SnapStart: initialise once, then fork.

`SnapshotTemplate` is the runtime's side: it starts a template process
(`python -m ric.snapshot module.function`, from the runtime site's copy of `lambdalab.runtime.ric`;
it runs the function's INIT once)
and asks it to fork a new execution environment whenever one is needed; `ForkedProcess` is the
`subprocess.Popen`-like handle on such an environment. What runs inside the template and its
children is `lambdalab.runtime.ric.snapshot`.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lambdalab._util.owned import remove_tree
from lambdalab.runtime.ric.snapshot import CONTROL_ENV, recv_message, send_message


class ForkedProcess:
    """A `subprocess.Popen`-like handle on an environment forked by the template."""

    def __init__(self, pid: int, stdout, template: "SnapshotTemplate"):
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        self._exited = threading.Event()
        self._template = template

    def _set_exit(self, code: int) -> None:
        self.returncode = code
        self._exited.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"forked environment {self.pid}", timeout)
        return self.returncode


class SnapshotTemplate:
    """An initialised template process that forks execution environments on request."""

    def __init__(self, spawn: Callable[..., subprocess.Popen], argv_prefix: list[str], handler: str,
                 env: dict[str, str], cwd: str, ready_timeout_s: float = 30.0, workdir: Path | None = None):
        self.workdir = workdir  # the template's HOME and TMPDIR: removed by close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock = ours
        self._lock = threading.Lock()
        self._replies: dict[str, dict] = {}
        self._reply_cv = threading.Condition()
        self._children: dict[int, ForkedProcess] = {}
        self._children_lock = threading.Lock()
        self._early_exits: dict[int, int] = {}
        self._seq = 0
        t0 = time.perf_counter()
        self.proc = spawn(args=[*argv_prefix, "-m", "ric.snapshot", handler], cwd=cwd,
                          env={**env, CONTROL_ENV: str(theirs.fileno())}, pass_fds=[theirs.fileno()],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          start_new_session=True)
        theirs.close()
        message, _ = recv_message(self._sock) if select.select([self._sock], [], [], ready_timeout_s)[0] else (None, [])
        self.init_ms = (time.perf_counter() - t0) * 1000
        self.init_output = self._read_output()
        if not message or not message.get("ready"):
            self.close()
            raise RuntimeError(f"snapshot template for {handler!r} did not start: {self.init_output!r}")
        self._reader = threading.Thread(target=self._read_replies, name="snapstart", daemon=True)
        self._reader.start()

    def _read_output(self) -> str:
        os.set_blocking(self.proc.stdout.fileno(), False)
        try:
            return (self.proc.stdout.read() or b"").decode("utf-8", "replace")
        except BlockingIOError:
            return ""

    def _read_replies(self) -> None:
        while True:
            try:
                message, _ = recv_message(self._sock)
            except OSError:
                message = None
            if message is None:
                for child in list(self._children.values()):
                    if child.returncode is None:
                        child._set_exit(-signal.SIGKILL)
                return
            if "exit" in message:
                with self._children_lock:
                    child = self._children.pop(message["exit"], None)
                    if child is None:  # exited before fork() registered it
                        self._early_exits[message["exit"]] = message["code"]
                if child is not None:
                    child._set_exit(message["code"])
            else:
                with self._reply_cv:
                    self._replies[message["id"]] = message
                    self._reply_cv.notify_all()

    def fork(self, env: dict[str, str]) -> ForkedProcess:
        """A new environment: returns once the child exists (its restore is still running)."""
        read_fd, write_fd = os.pipe()
        with self._lock:
            self._seq += 1
            request_id = str(self._seq)
            try:
                send_message(self._sock, {"id": request_id, "env": env}, [write_fd])
            finally:
                os.close(write_fd)
        with self._reply_cv:
            if not self._reply_cv.wait_for(lambda: request_id in self._replies, timeout=10):
                os.close(read_fd)
                raise RuntimeError("snapshot template did not fork in time")
            pid = self._replies.pop(request_id)["forked"]
        child = ForkedProcess(pid, os.fdopen(read_fd, "rb", buffering=0), self)
        with self._children_lock:
            if pid in self._early_exits:
                child._set_exit(self._early_exits.pop(pid))
            else:
                self._children[pid] = child
        return child

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()
        if self.workdir is not None:
            remove_tree(self.workdir)
