"""How the lessons' notebooks get their kernel under nbval: a kernel that dies while starting is reported.

nbval starts each notebook's kernel with its stderr sent to /dev/null, so a kernel that dies before
its first reply leaves nothing but "Kernel died before replying to kernel_info" on every cell. Here
the kernel's stderr goes to a file, and a death while starting becomes a warning in the run's summary
with the kernel's exit status and the end of its stderr. The kernel is then started once more: a
start can be lost to the machine (jupyter_client picks five free ports, and another process may bind
one before the kernel does), and such a loss says nothing about the lesson. A second death fails
the notebook with both reports.
"""

from __future__ import annotations

import tempfile
import warnings

import nbval.plugin
from jupyter_client.manager import KernelManager
from nbval.kernel import NbvalKernelspecManager, RunningKernel

START_ATTEMPTS = 2


class KernelStartWarning(UserWarning):
    """A notebook's kernel died before it answered its first request."""


def _start(kernel_name: str, cwd: str | None, startup_timeout: float) -> tuple[object, object] | str:
    """A ready (manager, client), or why the kernel died: its exit status and the end of its stderr."""
    with tempfile.TemporaryFile("w+") as stderr:
        km = KernelManager(kernel_name=kernel_name, kernel_spec_manager=NbvalKernelspecManager())
        km.start_kernel(stderr=stderr, cwd=cwd)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=startup_timeout)
            return km, kc
        except RuntimeError as e:
            process = getattr(km.provisioner, "process", None)
            status = process.poll() if process is not None else None
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            stderr.seek(0)
            tail = stderr.read()[-2000:].strip() or "(nothing on stderr)"
            return f"{e} (exit status {status}); its stderr ends:\n{tail}"


class ReportingKernel(RunningKernel):
    """nbval's kernel, started with its stderr kept, and once more if it dies while starting."""

    def __init__(self, kernel_name: str, cwd: str | None = None, startup_timeout: float = 60) -> None:
        deaths: list[str] = []
        for attempt in range(1, START_ATTEMPTS + 1):
            started = _start(kernel_name, cwd, startup_timeout)
            if not isinstance(started, str):
                self.km, self.kc = started
                break
            deaths.append(f"start {attempt}: {started}")
            warnings.warn(f"the kernel for {cwd} died while starting: {deaths[-1]}", KernelStartWarning,
                          stacklevel=2)
        else:
            raise RuntimeError("the notebook's kernel died while starting, every time:\n" + "\n".join(deaths))
        self._ensure_iopub_up()


nbval.plugin.RunningKernel = ReportingKernel
