"""Lesson 07 demo: a handler that opens a new PostgreSQL connection in every invocation.

The server's address comes from the DATABASE_URL environment variable. Every invocation pays
for a connect (a TCP handshake, a login, a new server process) and, while it runs, holds one of
the server's `max_connections` slots. A burst of invocations is a burst of connections.
"""

import os
import time

import psycopg

DATABASE_URL = os.environ["DATABASE_URL"]


def lambda_handler(event, context):
    work_s = float(event.get("work_s", 0.5))
    started = time.perf_counter()
    with psycopg.connect(DATABASE_URL, connect_timeout=5, application_name=context.function_name) as conn:
        connect_ms = (time.perf_counter() - started) * 1000
        # pg_sleep stands in for a query that keeps the server busy for `work_s` seconds.
        server_pid, _ = conn.execute("SELECT pg_backend_pid(), pg_sleep(%s)", (work_s,)).fetchone()
    # Leaving the `with` block closed the connection: the next invocation connects again.
    return {"server_pid": server_pid, "connect_ms": round(connect_ms, 2)}
