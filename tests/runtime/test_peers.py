"""The Runtime API answers only its own environment's worker, and one /next at a time.

On Lambda the Runtime API is reachable only inside the execution environment, and a (default)
environment serves one invocation at a time: only Lambda Managed Instances accept concurrent
`/next` requests (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html). Here the API
listens on 127.0.0.1, so another local process must not be able to take an event or forge a
response.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lambdalab.runtime import peers
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.runtime_api import PREFIX
from lambdalab.runtime.service import LocalRuntime

SLOW = textwrap.dedent('''
    import time

    def handler(event, context):
        time.sleep(event.get("sleep", 0))
        return "genuine"
''')

STRAY_POLLER = textwrap.dedent('''
    import http.client, os, threading

    def handler(event, context):
        got = {}
        def poll():
            host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=3)
            try:
                conn.request("GET", "/2018-06-01/runtime/invocation/next")
                reply = conn.getresponse()
                got["status"], got["body"] = reply.status, reply.read().decode()
            except OSError as e:
                got["status"] = repr(e)
        t = threading.Thread(target=poll)
        t.start()
        t.join()
        return got
''')

FOREIGN = textwrap.dedent('''
    import http.client, sys
    host, port = sys.argv[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=float(sys.argv[4]))
    try:
        conn.request(sys.argv[2], sys.argv[3], body=b"forged" if sys.argv[2] == "POST" else None)
        reply = conn.getresponse()
        print(reply.status, reply.read().decode())
    except OSError as e:
        print("error", repr(e))
''')


@pytest.fixture
def rt():
    with LocalRuntime(cpu_limit=False) as runtime:
        yield runtime


def _deploy(rt: LocalRuntime, tmp_path: Path, name: str, code: str, timeout_s: float = 10) -> None:
    (tmp_path / f"{name}.py").write_text(code)
    rt.deploy(FunctionConfig(name=name, code_dir=tmp_path, handler=f"{name}.handler", timeout_s=timeout_s))


def _foreign(address: str, method: str, path: str, timeout_s: float = 10) -> str:
    """A request from another local process (not the worker, not its child)."""
    out = subprocess.run([sys.executable, "-c", FOREIGN, address, method, path, str(timeout_s)],
                         capture_output=True, text=True, timeout=timeout_s + 20)
    return out.stdout.strip()


def test_a_foreign_process_cannot_take_the_next_event(rt, tmp_path) -> None:
    _deploy(rt, tmp_path, "slow", SLOW, timeout_s=3)
    assert rt.invoke("slow", {}).result == "genuine"  # a warm environment, its worker waiting on /next
    env = rt.environments("slow")[0]
    answers: list[str] = []
    thief = threading.Thread(target=lambda: answers.append(_foreign(env.server.address, "GET",
                                                                     f"{PREFIX}/invocation/next", 5)))
    thief.start()
    time.sleep(1.0)  # the foreign /next is in (before the fix it waits for the event)
    inv = rt.invoke("slow", {})
    thief.join()
    assert inv.error is None and inv.result == "genuine"
    assert answers[0].startswith("403") and "Forbidden" in answers[0]


def test_a_foreign_process_cannot_post_a_response(rt, tmp_path) -> None:
    _deploy(rt, tmp_path, "slow", SLOW)
    rt.invoke("slow", {})
    env = rt.environments("slow")[0]
    result: list = []
    caller = threading.Thread(target=lambda: result.append(rt.invoke("slow", {"sleep": 2})))
    caller.start()
    deadline = time.monotonic() + 5
    while (env._pending is None or not env._pending.t0) and time.monotonic() < deadline:
        time.sleep(0.01)
    request_id = env._pending.nxt.request_id
    answer = _foreign(env.server.address, "POST", f"{PREFIX}/invocation/{request_id}/response")
    caller.join()
    assert answer.startswith("403") or answer.startswith("error")
    assert result[0].result == "genuine"


def test_a_poller_started_by_the_handler_cannot_take_an_event(rt, tmp_path) -> None:
    _deploy(rt, tmp_path, "stray", STRAY_POLLER)
    got = rt.invoke("stray", {}).result
    assert got["status"] == 403 and json.loads(got["body"])["errorType"] == "InvalidStateTransition"
    later = rt.invoke("stray", {})  # the runtime client still serves the environment
    assert later.error is None


def test_a_second_concurrent_next_is_refused(rt, tmp_path, monkeypatch) -> None:
    _deploy(rt, tmp_path, "slow", SLOW)
    rt.invoke("slow", {})
    env = rt.environments("slow")[0]
    env.thaw()  # an idle worker may be frozen before its /next went out
    deadline = time.monotonic() + 5
    while env._next_waiting is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert env._next_waiting is not None, "the worker's own /next never arrived"
    # Let this test's own process past the peer check: what is checked here is the second /next.
    monkeypatch.setattr(env, "accepts", lambda client, server: True)
    import http.client
    host, port = env.server.address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", f"{PREFIX}/invocation/next")
    reply = conn.getresponse()
    assert reply.status == 403 and json.loads(reply.read())["errorType"] == "InvalidStateTransition"
    assert rt.invoke("slow", {}).result == "genuine"


def test_the_socket_owner_is_found_through_proc() -> None:
    import os
    import signal
    import socket
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        connect = f"import socket, time; s = socket.create_connection(('127.0.0.1', {port})); time.sleep(30)"
        # The socket is held by a grandchild of `parent`: found only by walking the tree.
        spawn_child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {connect!r}])"
        parent = subprocess.Popen([sys.executable, "-c", spawn_child], start_new_session=True)
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
        try:
            conn, client = server.accept()
            with conn:
                addr = server.getsockname()
                assert peers.held_by_tree(client, addr, [parent.pid], parent.pid) is True
                assert peers.held_by_tree(client, addr, [other.pid], other.pid) is False
        finally:
            for p in (parent, other):
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
