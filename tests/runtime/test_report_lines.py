"""The log lines Lambda writes around a failed invocation: their order and the REPORT line's numbers.

Each test runs a real worker through `LocalRuntime` and reads the invocation's log as
CloudWatch would show it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.records import Report
from lambdalab.runtime.service import LocalRuntime

HANDLER = '''
import os, time

def handler(event, context):
    if event.get("crash"):
        print("about to crash")
        os._exit(1)
    time.sleep(event.get("sleep", 0))
    return "ok"
'''

DIES_AT_IMPORT = '''
import os
import time
x = bytearray(24 << 20)  # some memory in use, as a real init would have
x[::4096] = b"x" * len(x[::4096])  # touched, so it is resident
time.sleep(0.3)  # a while of INIT
os._exit(3)  # then gone, before the runtime client ever asks for an event

def handler(event, context):
    return "never"
'''

SLOW_INIT = '''
import time
time.sleep(0.4)  # an INIT long enough to tell apart from a handler's few milliseconds

def handler(event, context):
    if event.get("crash"):
        import os
        os._exit(1)
    return "ok"
'''


@pytest.fixture
def rt():
    with LocalRuntime(cpu_limit=False) as runtime:
        yield runtime


def deploy(rt: LocalRuntime, tmp_path: Path, source: str, **kw) -> str:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "fn.py").write_text(source)
    name = "f" + str(abs(hash(source)) % 10_000)
    rt.deploy(FunctionConfig(name=name, code_dir=code, handler="fn.handler", **kw))
    return name


def tail(lines: list[str], request_id: str) -> list[str]:
    """The invocation's lines from START on, without the handler's own output."""
    start = lines.index(f"START RequestId: {request_id} Version: $LATEST")
    return [line for line in lines[start:] if line != "about to crash"]


def test_timeout_line_comes_before_end_and_report(rt: LocalRuntime, tmp_path: Path) -> None:
    """A timeout: START, the "Task timed out" line, END, then REPORT with Status: timeout.

    Lambda writes the timeout message inside the invocation, before END and REPORT (Failures
    during the Invoke phase, https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).
    """
    inv = rt.invoke(deploy(rt, tmp_path, HANDLER, timeout_s=1), {"sleep": 3})
    lines = tail(inv.log_lines, inv.request_id)
    assert lines[1].endswith(f" {inv.request_id} Task timed out after 1.00 seconds")
    assert lines[2] == f"END RequestId: {inv.request_id}"
    report = Report.parse(lines[3])
    assert report.status == "timeout" and lines[3] == inv.log_lines[-1]


def test_crash_lines_come_before_end_and_report(rt: LocalRuntime, tmp_path: Path) -> None:
    """A crash: START, "Runtime exited with error", Runtime.ExitError, END, then REPORT with its Status.

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html (Failures during the Invoke phase)
    """
    inv = rt.invoke(deploy(rt, tmp_path, HANDLER), {"crash": True})
    lines = tail(inv.log_lines, inv.request_id)
    assert lines[1:4] == [f"RequestId: {inv.request_id} Error: Runtime exited with error: exit status 1",
                          "Runtime.ExitError", f"END RequestId: {inv.request_id}"]
    report = Report.parse(lines[4])
    assert (report.status, report.error_type) == ("error", "Runtime.ExitError")


def test_the_suppressed_init_after_a_crash_is_in_duration_not_init_duration(rt: LocalRuntime,
                                                                           tmp_path: Path) -> None:
    """After a crash Lambda re-runs INIT with the next invocation (a "suppressed init"): the REPORT
    line has no Init Duration, and its Duration includes the re-init.

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html (Failures during the
    Invoke phase: "Lambda doesn't explicitly report an additional INIT phase ... the duration in the
    REPORT line includes an additional INIT duration + the INVOKE duration")
    """
    name = deploy(rt, tmp_path, SLOW_INIT)
    cold = rt.invoke(name, {})
    assert cold.init_ms is not None and cold.init_ms >= 400
    crashed = rt.invoke(name, {"crash": True})
    after = rt.invoke(name, {})
    assert after.ok and after.environment_id == crashed.environment_id
    assert after.init_ms is None and "Init Duration" not in after.log_lines[-1]
    assert after.duration_ms >= 400  # the 0.4 s re-init, which a warm invocation never has
    warm = rt.invoke(name, {})
    assert warm.duration_ms < 300  # and only once: the next invocation is an ordinary warm one


def test_report_of_a_worker_dying_in_init_measures_memory_and_duration(rt: LocalRuntime,
                                                                       tmp_path: Path) -> None:
    """A worker that exits before asking for its first event still gets a REPORT with its memory
    and the time its INIT ran (never Max Memory Used: 0 MB or Duration: 0.00 ms).

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html (Failures during the Init phase)
    """
    inv = rt.invoke(deploy(rt, tmp_path, DIES_AT_IMPORT), {})
    assert inv.error_type == "Runtime.ExitError" and inv.status == "error"
    report = Report.parse(inv.log_lines[-1])
    assert report.max_memory_used_mb >= 24  # the 24 MB the module allocated
    assert report.duration_ms > 0 and report.billed_ms >= 1


def test_init_error_report_measures_duration_and_has_an_init_report_line(rt: LocalRuntime,
                                                                         tmp_path: Path) -> None:
    """An init error (an exception at import): INIT_REPORT with Phase and Status, then a REPORT whose
    Duration is the INIT that Lambda re-runs in the invoke phase, not 0.00 ms.

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html (Failures during
    the Init phase: "INIT_REPORT Init Duration: ... Phase: init Status: error Error Type: ...")
    """
    t0 = time.perf_counter()
    inv = rt.invoke(deploy(rt, tmp_path, "import time\ntime.sleep(0.2)\nraise RuntimeError('no db')\n"), {})
    assert inv.error_type == "RuntimeError" and (time.perf_counter() - t0) >= 0.2
    init_report = next(line for line in inv.log_lines if line.startswith("INIT_REPORT"))
    assert init_report.startswith("INIT_REPORT Init Duration: ")
    assert init_report.endswith("\tPhase: init\tStatus: error\tError Type: RuntimeError")
    report = Report.parse(inv.log_lines[-1])
    assert report.duration_ms >= 200 and report.max_memory_used_mb > 0
    assert report.init_ms is None and report.billed_ms == math.ceil(report.duration_ms)
