"""Temporary directories and cgroups owned by a process, and the sweep of those whose owner died.

A process killed with SIGKILL runs no cleanup: its workers die with it (their parent-death
signal), but its directories under the system temp dir and its cgroups stay. So each directory
lambdalab makes there holds a marker file naming its owner (pid and the process's start time,
so a reused pid is not mistaken for the owner), each cgroup base is named `lambdalab-<pid>`,
and the next start sweeps whatever belongs to a dead owner. Directories without a marker (someone
else's, or an older version's) are never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

MARKER = ".lambdalab-owner"
PREFIX = "lambdalab-"


def start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _owner_text(pid: int) -> str:
    return f"{pid} {start_time(pid) or '?'}"


def alive(owner: str) -> bool:
    """Whether the process a marker names ("pid starttime") still runs."""
    try:
        pid_text, started = owner.split()
        pid = int(pid_text)
    except ValueError:
        return True  # unreadable: not ours to judge
    if not Path("/proc/self/stat").exists():  # no /proc (macOS): whether the pid exists at all
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    now = start_time(pid)
    return now is not None and (started == "?" or now == started)


def mark(path: Path) -> Path:
    """Record this process as `path`'s owner."""
    (path / MARKER).write_text(_owner_text(os.getpid()))
    return path


def owned_tempdir(prefix: str) -> Path:
    """A new directory in the system temp dir (`prefix` starting with "lambdalab-"), owned by this process."""
    return mark(Path(tempfile.mkdtemp(prefix=prefix)))


def remove_tree(path: Path) -> None:
    """Delete `path`, even its read-only parts (a sandbox's read-only code copy; root ignores modes anyway)."""
    if not path.exists():
        return
    for entry in (path, *path.rglob("*")):
        if entry.is_dir() and not entry.is_symlink():
            try:
                entry.chmod(0o700)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)


def sweep_tempdirs(root: Path | None = None) -> list[Path]:
    """Remove the marked directories in `root` (the system temp dir) whose owner is dead; returns them."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    try:
        entries = [e for e in root.iterdir() if e.name.startswith(PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        try:
            owner = (entry / MARKER).read_text()
        except OSError:
            continue  # not marked, not ours, or not readable
        if not alive(owner):
            remove_tree(entry)
            removed.append(entry)
    return removed


def kill_cgroup(path: Path, timeout_s: float = 5.0) -> bool:
    """SIGKILL every process in cgroup `path` (and its children), then remove it; True once it is gone.

    Membership catches what a process group misses: a handler's double-forked, setsid child.
    """
    children = [p for p in path.iterdir() if p.is_dir()] if path.exists() else []
    for child in children:
        kill_cgroup(child, timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)  # killed processes leave the cgroup once they have exited


def sweep_cgroups(root: Path) -> list[Path]:
    """Remove the `lambdalab-<pid>` cgroups under `root` whose pid is dead, killing what still runs in them."""
    removed = []
    try:
        entries = [e for e in root.iterdir() if e.name.startswith(PREFIX) and e.is_dir()]
    except OSError:
        return removed
    for entry in entries:
        pid = entry.name[len(PREFIX):]
        if pid.isdigit() and start_time(int(pid)) is None and kill_cgroup(entry):
            removed.append(entry)
    return removed
