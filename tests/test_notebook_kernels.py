"""The root conftest's notebook kernels: a kernel that dies while starting is reported, then started once more."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import nbval.kernel
import nbval.plugin
import pytest

# The kernel "program": counts its starts in `marker`.starts; `hangs` never answers; otherwise it dies
# with a message on stderr while `marker` does not exist yet (creating it when `once` is given), else
# runs ipykernel on the connection file.
KERNEL = """\
import os, sys, time
marker, mode, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(marker + ".starts", "a") as starts:
    starts.write("start\\n")
if mode == "hangs":
    time.sleep(600)
once = mode == "once"
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


def test_a_kernel_that_never_answers_is_stopped_and_not_started_again(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    name = _kernelspec(tmp_path, monkeypatch, "hangs")
    with warnings.catch_warnings(record=True) as seen, pytest.raises(RuntimeError) as failure:
        warnings.simplefilter("always")
        nbval.plugin.RunningKernel(name, cwd=str(tmp_path), startup_timeout=3)
    assert (tmp_path / "marker.starts").read_text().count("start") == 1
    assert not [w for w in seen if "died while starting" in str(w.message)]
    assert "exit status None" in str(failure.value)


def test_a_lab_check_does_not_load_nbval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lab check is a pytest run under this directory, so it loads the root conftest too; nbval's
    import (seconds, for nbformat's schemas) must stay where nbval runs. Each Python the check starts
    writes the modules it has loaded when it exits (a sitecustomize on PYTHONPATH)."""
    from lambdalab.course import checks

    seen = tmp_path / "seen"
    seen.mkdir()
    (tmp_path / "sitecustomize.py").write_text(
        "import atexit, os, sys\n"
        f"atexit.register(lambda: open(os.path.join({str(seen)!r}, str(os.getpid())), 'w')"
        ".write('\\n'.join(sys.modules)))\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    report = checks.check("hello", track="solutions", root=Path(__file__).resolve().parents[1])
    assert report.passed, report.output
    runs = [set(f.read_text().split()) for f in seen.iterdir()]
    checks_run = [modules for modules in runs if "_pytest.main" in modules]
    assert len(checks_run) == 1, f"{len(runs)} Pythons wrote their modules"
    assert "nbval" not in checks_run[0] and "nbformat" not in checks_run[0]
