"""The root conftest's notebook kernels: a kernel that dies while starting is reported, then started once more."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbval.kernel
import nbval.plugin
import pytest

# The kernel "program": dies with a message on stderr while `marker` does not exist yet (creating it
# when `once` is given), else runs ipykernel on the connection file.
KERNEL = """\
import os, sys
marker, once, argv = sys.argv[1], sys.argv[2] == "once", sys.argv[3:]
if not os.path.exists(marker):
    if once:
        open(marker, "w").close()
    sys.stderr.write("lost while binding its ports\\n")
    sys.exit(3)
from ipykernel import kernelapp
kernelapp.launch_new_instance(argv=argv)
"""


def _kernelspec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> str:
    script = tmp_path / "kernel.py"
    script.write_text(KERNEL)
    spec = tmp_path / "jupyter" / "kernels" / f"dies-{mode}"
    spec.mkdir(parents=True)
    argv = [sys.executable, str(script), str(tmp_path / "marker"), mode, "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": mode, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return f"dies-{mode}"


def test_nbval_uses_the_reporting_kernel() -> None:
    assert nbval.plugin.RunningKernel is not nbval.kernel.RunningKernel
    assert nbval.plugin.RunningKernel.__name__ == "ReportingKernel"


def test_a_kernel_lost_once_is_reported_and_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _kernelspec(tmp_path, monkeypatch, "once")
    with pytest.warns(UserWarning, match=r"(?s)died while starting: start 1: .*exit status 3.*lost while binding"):
        kernel = nbval.plugin.RunningKernel(name, cwd=str(tmp_path), startup_timeout=30)
    try:
        reply = kernel.kc.execute_interactive("1 + 1", timeout=30)
        assert reply["content"]["status"] == "ok"
    finally:
        kernel.stop()


def test_a_kernel_that_always_dies_fails_with_both_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _kernelspec(tmp_path, monkeypatch, "always")
    with pytest.warns(UserWarning), pytest.raises(RuntimeError) as failure:
        nbval.plugin.RunningKernel(name, cwd=str(tmp_path), startup_timeout=30)
    message = str(failure.value)
    assert "start 1:" in message and "start 2:" in message
    assert message.count("lost while binding its ports") == 2
    assert "exit status 3" in message
