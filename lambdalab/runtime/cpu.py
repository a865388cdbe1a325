"""CPU share for an execution environment, proportional to its memory as on Lambda.

Lambda gives a function one vCPU at 1,769 MB and scales linearly. Locally the share is
enforced with a CFS quota in a cgroup (v1 `cpu.cfs_quota_us` or v2 `cpu.max`) where the
machine lets us write one, else by a SIGSTOP/SIGCONT duty cycle on the worker's process group.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Protocol

from lambdalab._util.owned import kill_cgroup, sweep_cgroups

MB_PER_VCPU = 1769
PERIOD_US = 100_000
DUTY_PERIOD_S = 0.05  # shorter periods make SIGSTOP/SIGCONT overhead dominate


def vcpus_for(memory_mb: int) -> float:
    """Lambda's CPU share: memory / 1,769 MB, capped at 6 vCPUs (10,240 MB)."""
    return min(memory_mb / MB_PER_VCPU, 6.0)


class CpuLimit(Protocol):
    def attach(self, pid: int) -> None: ...
    def set_running(self, running: bool) -> None: ...
    def close(self) -> None: ...


class NoLimit:
    def attach(self, pid: int) -> None:
        pass

    def set_running(self, running: bool) -> None:
        pass

    def close(self) -> None:
        pass


class CgroupLimit:
    """A cgroup holding one worker, with a CFS quota of `vcpus` CPUs."""

    def __init__(self, base: Path, version: int, name: str, vcpus: float):
        self.path = base / name
        self.version = version
        self.path.mkdir(parents=True, exist_ok=True)
        quota = max(1000, int(PERIOD_US * vcpus))
        if version == 1:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")

    def attach(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def set_running(self, running: bool) -> None:
        pass

    def close(self) -> None:
        # Kill by membership: a handler's double-forked (setsid) child left the process group, not the cgroup.
        kill_cgroup(self.path)


class DutyCycleLimit:
    """Runs the worker `vcpus` of each 50 ms period and stops it for the rest, while it runs."""

    def __init__(self, vcpus: float):
        self.on_s = DUTY_PERIOD_S * min(vcpus, 1.0)
        self.off_s = DUTY_PERIOD_S - self.on_s
        self._pid: int | None = None
        self._running = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def attach(self, pid: int) -> None:
        self._pid = pid  # a process group: the worker restarted after a crash has a new one
        if self.off_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"duty-{pid}", daemon=True)
            self._thread.start()

    def set_running(self, running: bool) -> None:
        # Called with the worker thawed (running=True) or about to be frozen (False): the
        # lock makes sure the cycle never resumes a worker the environment has frozen.
        with self._lock:
            if running:
                self._running.set()
            else:
                self._running.clear()

    def _loop(self) -> None:
        while not self._closed.is_set():
            if not self._running.wait(timeout=0.5):
                continue
            time.sleep(self.on_s)
            with self._lock:
                if not self._running.is_set() or self._closed.is_set():
                    continue
                self._signal(signal.SIGSTOP)
            time.sleep(self.off_s)
            with self._lock:
                if self._running.is_set() and not self._closed.is_set():
                    self._signal(signal.SIGCONT)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self._pid, sig)
        except (ProcessLookupError, PermissionError, TypeError):
            pass

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._running.clear()
        if self._thread:
            self._thread.join(timeout=1)


def _cgroup_base() -> tuple[Path, int] | None:
    """A writable place for per-environment CPU cgroups, or None."""
    candidates: list[tuple[Path, int]] = []
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "cpu.cfs_quota_us").exists():
        candidates.append((v1, 1))
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists() and "cpu" in (v2 / "cgroup.subtree_control").read_text():
        candidates.append((v2, 2))
    for root, version in candidates:
        sweep_cgroups(root)  # left by a runtime killed with SIGKILL
        base = root / f"lambdalab-{os.getpid()}"
        try:
            base.mkdir(exist_ok=True)
            probe = CgroupLimit(base, version, "probe", 1.0)
            probe.close()
            return base, version
        except OSError:
            try:
                base.rmdir()
            except OSError:
                pass
    return None


class CpuController:
    """Chooses the mechanism once per runtime and makes a limit for each environment."""

    def __init__(self, mode: bool | str = True):
        if mode not in (True, False, "cgroup", "duty"):
            raise ValueError(f"cpu_limit must be True, False, 'cgroup' or 'duty', not {mode!r}")
        self._cgroup = None
        if mode is True or mode == "cgroup":
            self._cgroup = _cgroup_base()
            if mode == "cgroup" and self._cgroup is None:
                raise RuntimeError("cpu_limit='cgroup' but no writable cgroup CPU controller was found")
        self.mechanism = "off" if mode is False else ("cgroup" if self._cgroup else "duty")

    def limit(self, env_id: str, memory_mb: int) -> CpuLimit:
        vcpus = vcpus_for(memory_mb)
        if self.mechanism == "cgroup":
            base, version = self._cgroup
            return CgroupLimit(base, version, env_id, vcpus)
        if self.mechanism == "duty" and vcpus < 1.0:
            return DutyCycleLimit(vcpus)
        return NoLimit()

    def close(self) -> None:
        if self._cgroup:
            kill_cgroup(self._cgroup[0])
