# Generated from solutions/pool/handler.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check pool`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Lab `pool`: a handler that survives a burst, by connecting once per environment through the proxy.

The function's environment holds two addresses, as an RDS database with an RDS Proxy would:
DATABASE_URL, the PostgreSQL server itself, and PROXY_URL, the connection pooler in front of
it (pgbouncer in transaction pooling mode, the local stand-in for RDS Proxy). The server takes
only a few connections; the proxy takes hundreds and shares a few server connections among
them, lending one to a client for the length of a transaction.
"""

import os

import psycopg

# TODO(connect_at_init): Open the connection the handler uses, and name it `conn`:
# ONE per execution environment (code here runs once, at init), through the proxy rather
# than to the server (both addresses are in the environment). A transaction pool lends each transaction any server
# connection, so the connection must commit each statement itself and must not rely on
# server-side prepared statements: look up psycopg.connect's autocommit and
# prepare_threshold parameters (psycopg 3's "Connection" and "Prepared statements" pages).
raise NotImplementedError("Exercise 'connect_at_init' in labs/pool/handler.py: Open the connection the handler uses, and name it `conn`: ONE per execution environment (code here runs once, at init), through the proxy rather than to the server (both addresses are in the environment). A transaction pool lends each transaction any server connection, so the connection must commit each statement itself and must not rely on server-side prepared statements: look up psycopg.connect's autocommit and prepare_threshold parameters (psycopg 3's \"Connection\" and \"Prepared statements\" pages).")


def lambda_handler(event, context):
    work_s = float(event.get("work_s", 0.2))
    # One transaction: the proxy lends this client a server connection until it commits.
    with conn.transaction():
        server_pid, _ = conn.execute("SELECT pg_backend_pid(), pg_sleep(%s)", (work_s,)).fetchone()
    return {
        "server_pid": server_pid,  # the server process that ran the query (the pool's)
        "connection": conn.info.backend_pid,  # this client connection's id (pgbouncer makes it up)
        "port": conn.info.port,  # where `conn` points: the proxy's port, or the server's
    }
