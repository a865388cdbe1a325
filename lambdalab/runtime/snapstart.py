"""Snapshot-restore starts, the idea behind Lambda SnapStart: initialise once, then fork.

A *template* process imports the function's module once (its INIT) and runs the
`@register_before_snapshot` hooks. Each new execution environment is then a `fork()` of that
template: the child gets its own environment variables, log pipe and session, imports AWS's
runtime interface client (whose native client binds to the Runtime API address at import, so
it must not be imported before the fork), runs the `@register_after_restore` hooks and serves
events. The handler module is already in `sys.modules`, so the child's init is a restore.

Run as `python -m lambdalab.runtime.snapstart module.function` with `_LAMBDALAB_SNAP_FD` naming a
Unix socket; the runtime side is `SnapshotTemplate`.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Callable

CONTROL_ENV = "_LAMBDALAB_SNAP_FD"
_HEADER = struct.Struct("!I")


def _send(sock: socket.socket, message: dict, fds: list[int] = ()) -> None:
    data = json.dumps(message).encode()
    frame = _HEADER.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [frame], list(fds))
    else:
        sock.sendall(frame)


def _recv(sock: socket.socket) -> tuple[dict | None, list[int]]:
    head, fds, _, _ = socket.recv_fds(sock, _HEADER.size, 4)
    if not head:
        return None, []
    while len(head) < _HEADER.size:
        more = sock.recv(_HEADER.size - len(head))
        if not more:
            return None, fds
        head += more
    (length,) = _HEADER.unpack(head)
    data = b""
    while len(data) < length:
        chunk = sock.recv(length - len(data))
        if not chunk:
            return None, fds
        data += chunk
    return json.loads(data), fds


# -- template side (in the template process) -------------------------------------------------

def _preload(handler: str) -> None:
    """Import what every child needs, except the native Runtime API client."""
    import ctypes  # noqa: F401  (the child sets PR_SET_PDEATHSIG with it)
    import decimal  # noqa: F401
    import http.client  # noqa: F401
    import importlib
    import logging  # noqa: F401
    import traceback  # noqa: F401

    for module in ("simplejson", "awslambdaric.lambda_context", "awslambdaric.lambda_runtime_exception",
                   "awslambdaric.lambda_runtime_log_utils", "awslambdaric.lambda_runtime_marshaller",
                   "snapshot_restore_py"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    modname = handler.rsplit(".", 1)[0].replace("/", ".")
    try:
        importlib.import_module(modname)
    except BaseException as e:  # the child re-imports it and reports the error as awslambdaric does
        print(f"snapshot template: importing {modname!r} failed ({type(e).__name__}: {e}); "
              "each environment will report it", flush=True)
        return
    try:
        from awslambdaric.lambda_runtime_hooks_runner import run_before_snapshot
    except ImportError:
        return
    run_before_snapshot()


def _child(handler: str, env: dict[str, str], log_fd: int, control: socket.socket) -> None:
    """In the forked child: become a fresh environment, then run AWS's runtime client."""
    control.close()
    os.setsid()
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # die with the template
    except (OSError, AttributeError):
        pass
    os.environ.clear()
    os.environ.update(env)
    os.chdir(env.get("LAMBDA_TASK_ROOT", "/"))
    sys.argv = ["awslambdaric", handler]
    try:
        from awslambdaric.__main__ import main
    except ImportError:
        from lambdalab.runtime.ric.bootstrap import main  # type: ignore[no-redef]
    try:
        main(sys.argv)
    finally:
        os._exit(1)


def serve(handler: str, control: socket.socket) -> None:
    _preload(handler)
    _send(control, {"ready": True})
    children: set[int] = set()
    while True:
        ready, _, _ = select.select([control], [], [], 0.05)
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                _send(control, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})
        if not ready:
            continue
        message, fds = _recv(control)
        if message is None:  # the runtime is gone
            for pid in children:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(handler, message["env"], fds[0], control)
        os.close(fds[0])
        children.add(pid)
        _send(control, {"forked": pid, "id": message["id"]})


def main() -> None:
    control = socket.socket(fileno=int(os.environ.pop(CONTROL_ENV)))
    serve(sys.argv[1], control)


# -- runtime side ------------------------------------------------------------------------------

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
                 env: dict[str, str], cwd: str, ready_timeout_s: float = 30.0):
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
        self.proc = spawn(args=[*argv_prefix, "-m", "lambdalab.runtime.snapstart", handler], cwd=cwd,
                          env={**env, CONTROL_ENV: str(theirs.fileno())}, pass_fds=[theirs.fileno()],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          start_new_session=True)
        theirs.close()
        message, _ = _recv(self._sock) if select.select([self._sock], [], [], ready_timeout_s)[0] else (None, [])
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
                message, _ = _recv(self._sock)
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
                _send(self._sock, {"id": request_id, "env": env}, [write_fd])
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


if __name__ == "__main__":
    main()
