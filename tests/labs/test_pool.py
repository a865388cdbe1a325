"""Checks for lab `pool` (notebook 07): one connection per environment, through the proxy.

The track's handler runs in a real LocalRuntime that allows 50 concurrent environments, against
a real PostgreSQL that takes 20 connections, with pgbouncer in front of it (transaction pooling,
5 server connections): the local stand-in for RDS Proxy.
Run them with `check("pool")` in a notebook or `lambdalab check pool` in a shell.
"""

from __future__ import annotations

import pytest

from lambdalab.course.checks import fail_invocation
from lambdalab.course.lessons.connection_pools import LocalPostgres, PgBouncer, connection_burst, error_counts
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.records import Invocation
from lambdalab.runtime.service import LocalRuntime

MAX_CONNECTIONS = 20
POOL_SIZE = 5
BURST = 30  # concurrent invocations: more than the server's 20 connections


@pytest.fixture(scope="module")
def servers():
    """(PostgreSQL, pgbouncer in front of it), shared by the checks of this module."""
    with LocalPostgres(max_connections=MAX_CONNECTIONS) as pg, PgBouncer(pg, pool_size=POOL_SIZE) as proxy:
        yield pg, proxy


@pytest.fixture
def pooled(servers, lab_dir):
    """A runtime with the track's `pool` handler deployed as "pooled", given both addresses."""
    pg, proxy = servers
    with LocalRuntime(account_concurrency=50) as rt:
        rt.deploy(FunctionConfig(name="pooled", code_dir=lab_dir("pool"), handler="handler.lambda_handler",
                                 memory_mb=128, timeout_s=20,
                                 environment={"DATABASE_URL": pg.dsn, "PROXY_URL": proxy.dsn}))
        yield rt


def succeeded(inv: Invocation) -> Invocation:
    """The invocation, or the check fails with the handler's own error."""
    if not inv.ok:
        fail_invocation(inv)
    return inv


def test_queries_through_the_proxy(pooled, servers):
    """Runs its query through the proxy, not straight at the server.

    Hint: connect to os.environ["PROXY_URL"] (pgbouncer), not DATABASE_URL (the server itself).
    """
    pg, proxy = servers
    inv = succeeded(pooled.invoke("pooled", {"work_s": 0}))
    port = inv.result.get("port") if isinstance(inv.result, dict) else None
    where = "the server itself (DATABASE_URL)" if port == pg.port else f"port {port}"
    assert port == proxy.port, f"the handler's connection goes to {where}, not to the proxy at PROXY_URL"


def test_connects_once_per_environment(pooled, servers):
    """Opens one connection per environment and reuses it in warm invocations.

    Hint: open the connection at module level (it runs once, at init), not inside lambda_handler.
    """
    _, proxy = servers
    calls = [succeeded(pooled.invoke("pooled", {"work_s": 0})) for _ in range(3)]
    assert len({inv.environment_id for inv in calls}) == 1, "three calls in a row should reuse one environment"
    connections = {inv.result.get("connection") for inv in calls}
    assert len(connections) == 1, f"three warm invocations used {len(connections)} different connections"
    held = len(proxy.clients())
    assert held == 1, f"the environment should keep its one connection open between invocations; the proxy has {held}"


def test_survives_a_burst(pooled, servers):
    """Serves a burst of concurrent invocations without a failure, the server never over the pool.

    Hint: connect once, at init, to PROXY_URL with autocommit=True and prepare_threshold=None.
    """
    pg, proxy = servers
    succeeded(pooled.invoke("pooled", {"work_s": 0}))  # fail fast, with the handler's own error
    result = connection_burst(pooled, "pooled", BURST, pg, event={"work_s": 0.2}, proxy=proxy)
    assert not result.failures, (f"{len(result.failures)} of {BURST} invocations failed: "
                                 f"{next(iter(error_counts(result.invocations)))}")
    assert result.peak_connections <= POOL_SIZE, \
        f"the server saw {result.peak_connections} connections at once; through the proxy it would see {POOL_SIZE}"
