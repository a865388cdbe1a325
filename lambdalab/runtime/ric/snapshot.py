"""The template process of snapshot-restore starts (the idea behind Lambda SnapStart).

Run as ``python -m lambdalab.runtime.ric.snapshot module.function`` with ``_LAMBDALAB_SNAP_FD``
naming a Unix socket; ``lambdalab.runtime.snapstart.SnapshotTemplate`` starts it and talks to it.
It imports the function's module once (its INIT) and runs the ``@register_before_snapshot``
hooks. Each new execution environment is then a ``fork()`` of it: the child gets its own
environment variables, log pipe and session, imports AWS's runtime interface client (whose
native client binds to the Runtime API address at import, so it must not be imported before the
fork) or this package's, runs the ``@register_after_restore`` hooks and serves events. The
handler module is already in ``sys.modules``, so the child's init is a restore.

The messages both sides exchange are length-prefixed JSON, with file descriptors passed
alongside (``send_message``, ``recv_message``). Like the rest of this package, this module
imports nothing of ``lambdalab`` outside it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys

CONTROL_ENV = "_LAMBDALAB_SNAP_FD"
_HEADER = struct.Struct("!I")


def send_message(sock: socket.socket, message: dict, fds: list[int] = ()) -> None:
    data = json.dumps(message).encode()
    frame = _HEADER.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [frame], list(fds))
    else:
        sock.sendall(frame)


def recv_message(sock: socket.socket) -> tuple[dict | None, list[int]]:
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
        from .__main__ import main  # type: ignore[no-redef]
    try:
        main(sys.argv)
    finally:
        os._exit(1)


def serve(handler: str, control: socket.socket) -> None:
    _preload(handler)
    send_message(control, {"ready": True})
    children: set[int] = set()
    while True:
        ready, _, _ = select.select([control], [], [], 0.05)
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                send_message(control, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})
        if not ready:
            continue
        message, fds = recv_message(control)
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
        send_message(control, {"forked": pid, "id": message["id"]})


def main() -> None:
    control = socket.socket(fileno=int(os.environ.pop(CONTROL_ENV)))
    serve(sys.argv[1], control)


if __name__ == "__main__":
    main()
