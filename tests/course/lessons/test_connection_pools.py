"""Lesson 07's instruments against the real servers: PostgreSQL refuses connections itself, a burst
through pgbouncer succeeds while the server sees at most the pool, and the sampler sees it all."""

from __future__ import annotations

import re
import time
from pathlib import Path

import psycopg
import pytest

from lambdalab.course.lessons.connection_pools import (
    TOO_MANY_CLIENTS,
    ActivitySampler,
    LocalPostgres,
    PgBouncer,
    connection_burst,
    plot_bursts,
    too_many_clients,
)
from lambdalab.course.paths import package
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.service import LocalRuntime

ROOT = Path(__file__).resolve().parents[3]
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


def logged_pids(pg: LocalPostgres, text: str) -> set[int]:
    """The server process ids on log lines containing `text` (log_line_prefix is '%m [%p] ')."""
    return {int(m.group(1)) for line in pg.log_text().splitlines() if text in line
            for m in [re.search(r"\[(\d+)\]", line)] if m}


def test_a_burst_needs_a_positive_size():
    with pytest.raises(ValueError, match="a burst needs a positive number of invocations, not 0"):
        connection_burst(None, "f", 0, LocalPostgres(max_connections=10))  # type: ignore[arg-type]


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
    # Each invocation holds its connection for 8 s: longer than 30 cold starts take to finish, even on a
    # busy machine (at 5 s, a run beside a profiler saw the first connections close before the last opened).
    result = connection_burst(rt, "per-invocation", 30, pg, event={"work_s": 8.0})
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
    result = connection_burst(rt, "at-init", 30, pg, event={"work_s": 0.1})
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
    result = connection_burst(rt, "pooled", 50, pg, event={"work_s": 0.3}, proxy=bouncer, interval_s=0.01)
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
