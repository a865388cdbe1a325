"""`lambdalab doctor`: the notebooks' machine check, from a shell."""

from __future__ import annotations

import os
import platform
import sys

from lambdalab.cli import main
from lambdalab.course.doctor import findings


def test_doctor_reports_python_user_cpu_mechanism_and_postgres(capsys):
    status = main(["doctor"])
    out = capsys.readouterr().out
    assert "Python" in out and platform.python_version() in out
    assert f"(uid {os.geteuid()})" in out
    assert "CPU share by memory" in out
    assert any(m in out for m in ("cgroup CFS quota", "duty cycle"))
    assert "PostgreSQL (lesson 07)" in out and "PostgreSQL) " in out  # `postgres --version` ran
    assert status == (0 if all(f.ok for f in findings()) else 1)


def test_doctor_lists_the_runtimes_and_the_python_a_function_really_runs_on(capsys):
    main(["doctor"])
    row = next(line for line in capsys.readouterr().out.splitlines() if "Lambda runtimes" in line)
    tag = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert f"python3.N (any N) runs on the local Python {platform.python_version()} ({sys.executable})" in row
    assert f"AWS_EXECUTION_ENV=AWS_Lambda_{tag}" in row and "nodejs" in row and "refused" in row
