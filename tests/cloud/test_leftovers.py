"""A cloud whose process is killed with SIGKILL runs no cleanup; the next start sweeps what it left.

Its workers, template and servers die with it (their parent-death signal); its directories under
the system temp dir (the cloud's, the environments', the snapshot template's, PostgreSQL's and
pgbouncer's) and its cgroups are owned by its pid, and a later start removes them once that pid
is dead. Nothing of the old cloud remains in /tmp or the cgroup tree.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

OWNER = textwrap.dedent('''
    import json, pathlib, sys, tempfile
    from lambdalab.cloud.local_cloud import LocalCloud
    from lambdalab.cloud.postgres import LocalPostgres, PgBouncer, find_pgbouncer
    from lambdalab.runtime.config import FunctionConfig

    code = pathlib.Path(sys.argv[1])
    (code / "app.py").write_text("def handler(event, context):\\n    return 'ok'\\n")
    cloud = LocalCloud(cpu_limit=True).start()
    cloud.deploy("plain", code, "app.handler")
    assert cloud.invoke("plain", {}).result == "ok"
    rt = cloud.runtime
    rt.deploy(FunctionConfig(name="snap", code_dir=code, handler="app.handler", snap_start=True))
    assert rt.invoke("snap", {}).result == "ok"
    pg = LocalPostgres().start()
    bouncer = None
    try:
        find_pgbouncer()
        bouncer = PgBouncer(pg).start()
    except Exception as e:
        print("no pgbouncer:", e, file=sys.stderr)
    template = rt._functions["snap"].template
    pids = rt.worker_pids() + [template.proc.pid] + [s.pid for s in (pg, bouncer) if s is not None]
    print(json.dumps({"pids": pids, "cgroup": rt.cpu.mechanism}), flush=True)
    sys.stdin.read()  # until killed
''')


NEXT_START = "from lambdalab.runtime.service import LocalRuntime\nLocalRuntime(cpu_limit=True).close()"


def _ours(root: Path) -> set[str]:
    try:
        return {p.name for p in root.iterdir() if p.name.startswith("lambdalab-")}
    except OSError:
        return set()


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cgroup_roots() -> list[Path]:
    return [p for p in (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")) if p.exists()]


def test_after_a_sigkill_the_next_start_leaves_nothing_of_the_old_cloud(tmp_path: Path) -> None:
    # A temp dir of its own, so nothing another test run makes at the same time is counted; like
    # /tmp, open to the PostgreSQL service account (pytest's tmp_path is not).
    tmp = Path(tempfile.mkdtemp(prefix="leftovers-"))
    tmp.chmod(0o1777)
    try:
        _kill_then_start_again(tmp, tmp_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _kill_then_start_again(tmp: Path, tmp_path: Path) -> None:
    environ = {**os.environ, "TMPDIR": str(tmp)}
    before = _ours(tmp)
    code = tmp_path / "code"
    code.mkdir()
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(code)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=environ)
    try:
        line = owner.stdout.readline()
        assert line, "the owner process did not start its cloud"
        started = json.loads(line)
        left = _ours(tmp) - before
        assert any(n.startswith("lambdalab-cloud-") for n in left)
        assert any(n.startswith("lambdalab-pg-") for n in left)
        assert any("-template-" in n for n in left)
        cgroups = [r / f"lambdalab-{owner.pid}" for r in _cgroup_roots() if (r / f"lambdalab-{owner.pid}").exists()]
        if started["cgroup"] == "cgroup":
            assert cgroups
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(p) for p in started["pids"]):
        time.sleep(0.05)
    assert not [p for p in started["pids"] if _running(p)], "processes of the killed cloud remain"
    subprocess.run([sys.executable, "-c", NEXT_START], env=environ, check=True, timeout=120)
    assert not [n for n in left if (tmp / n).exists()], "directories of the killed cloud remain"
    assert not [n for n in _ours(tmp) - before if not n.startswith("lambdalab-cache-")], "something new remains"
    assert not [c for c in cgroups if c.exists()], "cgroups of the killed cloud remain"
