# Generated from solutions/lesson07/at_init.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check lesson07`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Lesson 07 demo: a handler that connects once, at init, and reuses the connection.

Lambda runs module-level code once per execution environment (the cold start), so `conn`
below is opened once and every warm invocation of that environment reuses it: one connect per
environment instead of one per invocation. The environment keeps the connection open while it
sits frozen between invocations, until Lambda reaps it.
"""

import os
import time

import psycopg

DATABASE_URL = os.environ["DATABASE_URL"]
_started = time.perf_counter()
conn = psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5,
                       application_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "lambda"))
CONNECT_MS = round((time.perf_counter() - _started) * 1000, 2)
invocations = 0  # served by this environment, over this one connection


def lambda_handler(event, context):
    global invocations
    invocations += 1
    work_s = float(event.get("work_s", 0.5))
    with conn.transaction():
        server_pid, _ = conn.execute("SELECT pg_backend_pid(), pg_sleep(%s)", (work_s,)).fetchone()
    return {"server_pid": server_pid, "connect_ms": CONNECT_MS if invocations == 1 else 0.0,
            "invocations": invocations}
