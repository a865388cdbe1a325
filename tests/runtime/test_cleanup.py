"""Closing the runtime leaves nothing behind: no process a handler started, no directory, no cgroup.

Lambda freezes and finally shuts down the whole execution environment, processes a function
started in the background included ("Lambda ... removes the environment", the execution
environment lifecycle, https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).
"""

from __future__ import annotations

import os
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest

from lambdalab._util import owned
from lambdalab.runtime import sandbox
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.cpu import _cgroup_base
from lambdalab.runtime.service import LocalRuntime

DAEMON = textwrap.dedent('''
    import os, sys, time

    def handler(event, context):
        if os.fork() == 0:  # the classic daemon: fork, setsid, fork again, the middle one exits
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", event["marker"]])
            os._exit(0)
        os.wait()
        return "started"
''')


def _cgroup_available() -> bool:
    base = _cgroup_base()
    if base is not None:
        owned.kill_cgroup(base[0])  # only asked: the runtime makes its own
    return base is not None


def _with_marker(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if marker in (p.info["cmdline"] or []):
            found.append(p)
    return found


def _gone(marker: str, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not [p for p in _with_marker(marker) if p.status() != psutil.STATUS_ZOMBIE]:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("where", ["host sandbox in a cgroup", "namespace sandbox"])
def test_a_double_forked_setsid_child_dies_with_close(tmp_path: Path, monkeypatch, where: str) -> None:
    """In a cgroup, membership finds the child that left the process group; in the namespace
    sandbox, the PID namespace dies with its init."""
    if where == "host sandbox in a cgroup":
        if not _cgroup_available():
            pytest.skip("no writable cgroup CPU controller here (not root): the cgroup path is not testable")
        monkeypatch.setattr(sandbox, "probe", lambda: sandbox.Support(False, "turned off by this test"))
        cpu_limit: bool | str = "cgroup"
    else:
        if not sandbox.probe().ok:
            pytest.skip(f"no sandbox here ({sandbox.probe().reason})")
        cpu_limit = False
    (tmp_path / "daemon.py").write_text(DAEMON)
    marker = f"lambdalab-test-daemon-{uuid.uuid4().hex}"
    with LocalRuntime(cpu_limit=cpu_limit) as rt:
        rt.deploy(FunctionConfig(name="daemon", code_dir=tmp_path, handler="daemon.handler", timeout_s=10))
        assert rt.invoke("daemon", {"marker": marker}).result == "started"
        deadline = time.monotonic() + 5
        while not _with_marker(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _with_marker(marker), "the handler's daemon never started"
    assert _gone(marker), "the handler's setsid child outlived close()"


def test_the_sweep_removes_only_directories_of_dead_owners(tmp_path: Path) -> None:
    dead, live, unmarked = tmp_path / "lambdalab-dead", tmp_path / "lambdalab-live", tmp_path / "lambdalab-other"
    for d in (dead, live, unmarked):
        d.mkdir()
    (dead / "sub").mkdir()
    (dead / "sub" / "ro").write_text("x")
    (dead / "sub").chmod(0o500)  # a read-only code copy, as HostSandbox makes
    (dead / owned.MARKER).write_text("999999999 1")  # no such pid
    owned.mark(live)
    removed = owned.sweep_tempdirs(tmp_path)
    assert removed == [dead] and not dead.exists()
    assert live.exists() and unmarked.exists()


def test_a_reused_pid_is_not_the_owner(tmp_path: Path) -> None:
    stale = tmp_path / "lambdalab-stale"
    stale.mkdir()
    (stale / owned.MARKER).write_text(f"{os.getpid()} 1")  # this pid, but a process started at another time
    assert owned.sweep_tempdirs(tmp_path) == [stale]
