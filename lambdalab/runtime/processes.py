"""What the operating system says about a worker process: its state letter and its peak memory.

`process_state(pid)` is public: the notebooks use it to show that an idle execution environment
is frozen (state ``T``). Both read Linux's ``/proc``, and fall back to psutil elsewhere (macOS).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["peak_kb", "process_state"]


def process_state(pid: int) -> str:
    """The one-letter state of a process (R, S, T for stopped, Z...), or '' if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        import psutil
        try:
            return {"stopped": "T", "running": "R", "sleeping": "S", "zombie": "Z"}.get(
                psutil.Process(pid).status(), "?")
        except psutil.Error:
            return ""


def _memory_probe() -> Callable[[int], int]:
    """Peak resident memory of a process in kB: Linux's VmHWM, else psutil's current RSS."""
    if Path("/proc/self/status").exists():
        def probe(pid: int) -> int:
            try:
                with open(f"/proc/{pid}/status", "rb", buffering=0) as f:
                    data = f.read(4096)
            except OSError:
                return 0
            at = data.find(b"VmHWM:")
            return int(data[at + 6:data.index(b"kB", at)]) if at >= 0 else 0
        return probe
    import psutil

    def probe_rss(pid: int) -> int:
        try:
            return psutil.Process(pid).memory_info().rss // 1024
        except psutil.Error:
            return 0
    return probe_rss


peak_kb = _memory_probe()
