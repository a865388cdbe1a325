"""Lambda's sandbox: a private /tmp of the ephemeral size, a read-only /var/task, an unprivileged user.

Each test runs a real worker through `LocalRuntime` and asks the handler what it can see and do.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.sandbox import SANDBOX_UID, probe
from lambdalab.runtime.service import LocalRuntime

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox uses Linux namespaces")

PROBE = '''
import errno, json, os, time

def handler(event, context):
    action = event["action"]
    if action == "fill":  # write `mb` megabytes into /tmp
        try:
            with open("/tmp/fill", "wb") as f:
                for _ in range(event["mb"]):
                    f.write(b"\\0" * (1 << 20))
                f.flush()
                os.fsync(f.fileno())
            return "ok"
        except OSError as e:
            return errno.errorcode[e.errno]
        finally:
            if os.path.exists("/tmp/fill"):
                os.remove("/tmp/fill")
    if action == "write":
        with open("/tmp/" + event["name"], "w") as f:
            f.write(event["name"])
        time.sleep(event.get("hold", 0))
        return sorted(os.listdir("/tmp"))
    if action == "crash":
        with open("/tmp/" + event["name"], "w") as f:
            f.write("before the crash")
        os._exit(1)
    if action == "read":
        with open("/tmp/" + event["name"]) as f:
            return f.read()
    if action == "task_root":
        root = os.environ["LAMBDA_TASK_ROOT"]
        try:
            open(os.path.join(root, "written.txt"), "w").close()
            return [root, "written"]
        except OSError as e:
            return [root, errno.errorcode[e.errno]]
    if action == "who":
        return {"uid": os.getuid(), "gid": os.getgid(), "secret": os.environ.get(event["variable"])}
    if action == "whoami":
        import getpass, grp, pwd
        return [pwd.getpwuid(os.getuid()).pw_name, getpass.getuser(), grp.getgrgid(os.getgid()).gr_name]
    if action == "open":
        try:
            with open(event["path"], "rb") as f:
                return "read %d bytes" % len(f.read())
        except OSError as e:
            return errno.errorcode[e.errno]
    if action == "respond":
        return "x" * (event["bytes"] - 2)  # a JSON string: two quotes around the characters
'''


@pytest.fixture
def code(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text(PROBE)
    return code


@pytest.fixture
def rt():
    with LocalRuntime(cpu_limit=False) as runtime:
        yield runtime


def deploy(rt: LocalRuntime, code: Path, **kw) -> str:
    name = f"sandbox-{uuid.uuid4().hex[:8]}"
    rt.deploy(FunctionConfig(name=name, code_dir=code, handler="probe.handler", timeout_s=60, **kw))
    return name


def test_the_kernel_lets_this_machine_build_the_sandbox() -> None:
    """Everything below needs user and mount namespaces; say plainly when the machine refuses them."""
    assert probe().ok, probe().reason


def test_tmp_is_the_configured_ephemeral_storage(rt: LocalRuntime, code: Path) -> None:
    """/tmp holds 512 MB by default and what EphemeralStorage says otherwise; past it, ENOSPC.

    https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html
    """
    small = deploy(rt, code)
    assert rt.invoke(small, {"action": "fill", "mb": 600}).result == "ENOSPC"
    assert rt.invoke(small, {"action": "fill", "mb": 400}).result == "ok"
    large = deploy(rt, code, ephemeral_storage_mb=1024)
    assert rt.invoke(large, {"action": "fill", "mb": 600}).result == "ok"


def mount_points_under_tmp() -> set[str]:
    """Top-level names in /tmp under which the sandbox binds host paths (a checkout, venv or cache
    living in /tmp): they show in the private /tmp as read-only mount points, and hold nothing of its."""
    import lambdalab
    from lambdalab.runtime.imports import runtime_site

    paths = {sys.prefix, os.path.realpath(sys.prefix), str(Path(lambdalab.__file__).resolve().parents[1]),
             str(runtime_site())}
    return {Path(p).parts[2] for p in paths if Path(p).parts[:2] == ("/", "tmp") and len(Path(p).parts) > 2}


def test_environments_do_not_share_tmp_and_nothing_stays_on_the_host(code: Path) -> None:
    """Each execution environment has its own /tmp; the host's /tmp never sees it, even after close().

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    """
    names = [f"only-{uuid.uuid4().hex}" for _ in range(2)]
    seen: dict[str, object] = {}
    with LocalRuntime(cpu_limit=False) as rt:
        fn = deploy(rt, code)

        def call(name: str) -> None:
            seen[name] = rt.invoke(fn, {"action": "write", "name": name, "hold": 1.0})

        threads = [threading.Thread(target=call, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        first, second = (seen[n] for n in names)
        assert first.environment_id != second.environment_id
        stubs = mount_points_under_tmp()
        assert [n for n in first.result if n not in stubs] == [names[0]]
        assert [n for n in second.result if n not in stubs] == [names[1]]
        assert not any(Path("/tmp", n).exists() for n in names)
    leftovers = [p for p in Path("/tmp").iterdir() if fn in p.name or p.name in names]
    assert leftovers == []


def test_tmp_survives_a_crash_of_the_same_environment(rt: LocalRuntime, code: Path) -> None:
    """After a crash Lambda resets the environment: a new runtime process, the same /tmp, no Init Duration.

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    """
    fn = deploy(rt, code)
    crashed = rt.invoke(fn, {"action": "crash", "name": "kept"})
    assert crashed.error_type == "Runtime.ExitError"
    after = rt.invoke(fn, {"action": "read", "name": "kept"})
    assert after.ok, after.error
    assert after.result == "before the crash"
    assert after.environment_id == crashed.environment_id
    assert after.init_ms is None and not after.cold


def test_task_root_is_read_only_var_task(rt: LocalRuntime, code: Path) -> None:
    """The code is at /var/task, read-only (EROFS), never the learner's own folder.

    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
    """
    inv = rt.invoke(deploy(rt, code), {"action": "task_root"})
    assert inv.result == ["/var/task", "EROFS"]
    assert not (code / "written.txt").exists()


def test_the_sandbox_can_be_switched_off_to_measure_what_it_costs(code: Path) -> None:
    """`LocalRuntime(sandbox=False)`: the host fallback (the code a copy, not /var/task), said in the log."""
    with LocalRuntime(cpu_limit=False, sandbox=False) as bare:
        inv = bare.invoke(deploy(bare, code), {"action": "task_root"})
    root = inv.result[0]
    assert root != "/var/task" and Path(root).name == "task"
    assert any("no Lambda sandbox on this machine (switched off: LocalRuntime(sandbox=False))" in line
               for line in inv.log_lines)


def test_handler_runs_as_an_unprivileged_user(rt: LocalRuntime, code: Path) -> None:
    """Lambda runs functions as sbx_user1051 (uid 993), whoever started the runtime.

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    """
    inv = rt.invoke(deploy(rt, code), {"action": "who", "variable": "NOPE"})
    assert inv.result["uid"] == SANDBOX_UID != 0


def test_handler_cannot_see_the_parent(rt: LocalRuntime, code: Path, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    """Only Lambda's variables and the function's own reach the handler; the parent's process and files don't.

    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
    """
    monkeypatch.setenv("LAMBDALAB_PARENT_ONLY", "parent-secret")
    private = tmp_path / "private.txt"
    private.write_text("the learner's own")
    private.chmod(0o600)
    fn = deploy(rt, code)
    assert rt.invoke(fn, {"action": "who", "variable": "LAMBDALAB_PARENT_ONLY"}).result["secret"] is None
    environ = rt.invoke(fn, {"action": "open", "path": f"/proc/{os.getpid()}/environ"}).result
    assert environ in ("ENOENT", "EACCES", "EPERM"), environ
    assert rt.invoke(fn, {"action": "open", "path": str(private)}).result in ("ENOENT", "EACCES")


def test_response_limit_is_lambdas(rt: LocalRuntime, code: Path) -> None:
    """A synchronous response may be 6,291,556 bytes; one byte more fails with Lambda's message.

    https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    """
    fn = deploy(rt, code, memory_mb=512)
    ok = rt.invoke(fn, {"action": "respond", "bytes": 6_291_556})
    assert ok.ok and len(ok.payload) == 6_291_556
    big = rt.invoke(fn, {"action": "respond", "bytes": 6_291_557})
    assert big.error == {"errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                         "errorType": "Function.ResponseSizeTooLarge"}


def test_report_after_a_crash_measures_memory(rt: LocalRuntime, code: Path) -> None:
    """Every REPORT line carries the memory the worker used, a crash's too (never 0 MB).

    https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html
    """
    crashed = rt.invoke(deploy(rt, code), {"action": "crash", "name": "x"})
    assert crashed.error_type == "Runtime.ExitError"
    assert crashed.max_memory_used_mb > 0 and crashed.duration_ms > 0


def test_the_sandbox_works_when_the_interpreters_packages_live_under_tmp(tmp_path):
    """A checkout, venv or cache under /tmp (CI clones, throwaway venvs) is bound into the sandbox
    on top of its private /tmp, not refused by it (the launcher once failed with EEXIST there)."""
    import subprocess

    if not probe().ok:
        pytest.skip(f"no sandbox on this machine: {probe().reason}")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "LAMBDALAB_CACHE": str(tmp_path / "cache")}  # the runtime site under /tmp
    command = [str(Path(sys.executable).parent / "lambdalab"), "invoke", str(root / "solutions" / "hello"),
               "--handler", "handler.lambda_handler"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "no Lambda sandbox" not in result.stderr
    assert '"greeting": "Hello, world!"' in result.stdout


def test_the_user_has_lambdas_name(rt: LocalRuntime, code: Path) -> None:
    """pwd and getpass name the function's user sbx_user1051, as on Lambda (an unknown uid raises KeyError).

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    """
    assert rt.invoke(deploy(rt, code), {"action": "whoami"}).result == ["sbx_user1051"] * 3


def test_init_duration_leaves_out_the_sandboxs_own_setup(rt: LocalRuntime, code: Path) -> None:
    """Lambda's Init Duration is the INIT phase (extension, runtime and function init), not the
    creation of the execution environment's microVM, which the launcher's namespaces and mounts
    stand for: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    The launcher reports its own time, and the REPORT line's Init Duration leaves it out."""
    name = deploy(rt, code)
    started = time.perf_counter()
    inv = rt.invoke(name, {"action": "who", "variable": "HOME"})
    wall_ms = (time.perf_counter() - started) * 1000
    assert inv.ok and inv.cold and inv.init_ms is not None
    setup_ms = rt.environments(name)[0].sandbox.setup_ms
    assert setup_ms > 0  # the launcher ran and said how long it took
    assert inv.init_ms + setup_ms <= wall_ms  # both inside the cold call, neither counted twice
    assert f"Init Duration: {inv.init_ms:.2f} ms" in inv.log_lines[-1]


def test_the_launchers_spec_round_trips_and_refuses_a_line_break(tmp_path: Path) -> None:
    from lambdalab.runtime.sandbox import _spec
    from lambdalab.runtime.sandbox.launcher import parse_spec

    spec = parse_spec(_spec(tmp_path, None, 1024, {"PYTHONPATH": "/somewhere/site"}, [5, 6], 7))
    assert spec["task"] == str(tmp_path) and spec["opt"] is None and spec["tmp_mb"] == 1024
    assert spec["join"] == [5, 6] and spec["pid_fd"] == 7 and spec["uid"] == SANDBOX_UID
    assert "/somewhere/site" in spec["binds"] and "/usr" in spec["binds"]
    with pytest.raises(ValueError, match="line break"):
        _spec(tmp_path / "a\nb", None, 512, {}, None, None)


def test_the_sandboxs_init_exits_with_its_parent_even_one_gone_before_it_ran() -> None:
    """The init (pid 1 of the sandbox's PID namespace) lives as long as the launcher that forked
    it. Under load the launcher can finish a short run (the sandbox probe) before the init is
    first scheduled: a parent-death signal set by the init then never came, and each such init
    paused forever, reparented to the host's pid 1. Here the parent is gone before `_init` runs."""
    from lambdalab.runtime.sandbox.launcher import _init

    lifeline, held = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's own exit status is the assertion)
        os.close(held)
        try:
            _init(lifeline)
        finally:
            os._exit(99)
    os.close(held)  # the parent "exits" before the init looks at it
    os.close(lifeline)
    deadline = time.monotonic() + 10
    while (done := os.waitpid(child, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(child, 9)
        os.waitpid(child, 0)
        pytest.fail("the init outlived its parent")
    assert os.waitstatus_to_exitcode(done[1]) == 0


def test_no_sandbox_process_outlives_the_probe() -> None:
    """Every process the launcher made (the forking parent, the init, the worker) is gone once
    `probe()` returns."""
    import psutil

    def inits() -> set[int]:
        return {p.pid for p in psutil.process_iter(["cmdline"])
                if any("_lambdalab_probe_" in part for part in (p.info["cmdline"] or []))}

    before = inits()
    assert probe().ok
    deadline = time.monotonic() + 10
    while (left := inits() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left


def test_a_frozen_environments_init_dies_with_its_launcher(rt, code) -> None:
    """A frozen environment's whole process group is stopped, its init included; when the launcher
    dies (killed with SIGKILL, as a kernel restart or an OOM kill would), the stopped init must die
    too, not stay behind under the host's pid 1."""
    import signal

    import psutil

    name = deploy(rt, code)
    assert rt.invoke(name, {"action": "write", "name": "x"}).ok
    env = rt.environments(name)[0]
    launcher = psutil.Process(env.proc.pid)
    family = [p for p in launcher.children() if p.pid != env.pid]  # the init (the worker is env.pid)
    deadline = time.monotonic() + 10  # frozen between invocations, as Lambda freezes it
    while not all(p.status() == psutil.STATUS_STOPPED for p in family) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert family and all(p.status() == psutil.STATUS_STOPPED for p in family)
    os.kill(launcher.pid, signal.SIGKILL)
    gone, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, [p.status() for p in alive]
