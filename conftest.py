"""How the lessons' notebooks get their kernel under nbval: a kernel that dies while starting is reported.

nbval starts each notebook's kernel with its stderr sent to /dev/null, so a kernel that dies before
its first reply leaves nothing but "Kernel died before replying to kernel_info" on every cell. Here
the kernel's stderr goes to a file, and a death while starting becomes a warning in the run's summary
with the kernel's exit status and the end of its stderr. The kernel is then started once more: a
start can be lost to the machine (jupyter_client picks five free ports, and another process may bind
one before the kernel does), and such a loss says nothing about the lesson. A second death fails
the notebook with both reports. A kernel that is still running but never answers is not started
again: that is the lesson's environment at fault, and waiting twice would only hide it.
"""

from __future__ import annotations

import tempfile
import warnings
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from jupyter_client.blocking import BlockingKernelClient
    from jupyter_client.manager import KernelManager

START_ATTEMPTS = 2


class KernelStartWarning(UserWarning):
    """A notebook's kernel died before it answered its first request."""


class KernelDied(RuntimeError):
    """The kernel exited before it answered its first request; the message says how and why."""


def _start(kernel_name: str, cwd: str | None, startup_timeout: float) -> tuple[KernelManager, BlockingKernelClient]:
    """A ready (manager, client). If the kernel does not get ready, the error gives its exit status
    (None: still running, stopped here) and the end of its stderr; `KernelDied` if it had exited."""
    from jupyter_client.manager import KernelManager
    from nbval.kernel import NbvalKernelspecManager

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
            report = f"{e} (exit status {status}); its stderr ends:\n{tail}"
            raise (RuntimeError if status is None else KernelDied)(report) from None


def pytest_configure(config: pytest.Config) -> None:
    # Only where nbval runs: every lab check (`lambdalab check`, a pytest run under this directory
    # with plugins off) loads this file too, and importing nbval would cost each of them seconds.
    if not config.pluginmanager.hasplugin("nbval"):
        return
    import nbval.plugin
    from nbval.kernel import RunningKernel

    class ReportingKernel(RunningKernel):
        """nbval's kernel, started with its stderr kept, and once more if it dies while starting."""

        def __init__(self, kernel_name: str, cwd: str | None = None, startup_timeout: float = 60) -> None:
            deaths: list[str] = []
            for attempt in range(1, START_ATTEMPTS + 1):
                try:
                    self.km, self.kc = _start(kernel_name, cwd, startup_timeout)
                    break
                except KernelDied as e:
                    deaths.append(f"start {attempt}: {e}")
                    warnings.warn(f"the kernel for {cwd} died while starting: {deaths[-1]}", KernelStartWarning,
                                  stacklevel=2)
            else:
                raise RuntimeError("the notebook's kernel died while starting, every time:\n" + "\n".join(deaths))
            self._ensure_iopub_up()

    nbval.plugin.RunningKernel = ReportingKernel
