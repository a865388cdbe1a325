"""lambdalab.runtime.ric against awslambdaric 4.2.2: the same handlers behind the same Runtime API.

Each comparison runs both clients (``CLIENTS``) as real worker processes against a small
Runtime API server defined here, then compares what the server received (payloads, content
types, X-Ray causes, init errors) and what the worker wrote to its log pipe, field by field.
Every comparison also checks absolute expectations, so both clients being wrong the same way
still fails. Run this file directly (``python tests/runtime/test_ric.py``) to print the latency
measurements.
"""

from __future__ import annotations

import ast
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

CLIENTS = ("awslambdaric", "bootstrap")
CLIENT_MODULES = {"awslambdaric": "awslambdaric", "bootstrap": "lambdalab.runtime.ric"}
RIC_DIR = Path(__file__).resolve().parents[2] / "lambdalab" / "runtime" / "ric"
API = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:bootstrap-check"
DEADLINE_MS = 3000
WAIT_S = 20.0
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?Z")
RUNTIME_LOG_MS = re.compile(r"^\[ERROR\] \[\d+\] LAMBDA_RUNTIME", re.M)
# Runs a copy of ric/ as the top-level package `ric`, with every import of lambdalab failing.
TOP_LEVEL_LAUNCHER = (
    "import runpy, sys; sys.modules['lambdalab'] = None; "
    "runpy.run_module('ric', run_name='__main__', alter_sys=True)"
)
NO_CTYPES_LAUNCHER = (
    "import runpy, sys; sys.modules['ctypes'] = None; "
    "runpy.run_module('lambdalab.runtime.ric', run_name='__main__', alter_sys=True)"
)

# --------------------------------------------------------------------------- handler code

HANDLERS_PY = r'''
import collections, decimal, logging, os, sys, time

Point = collections.namedtuple("Point", "x y")


class PaymentDeclined(Exception):
    pass


def _circular():
    items = []
    items.append(items)
    return items


VALUES = {
    "dict": lambda: {"a": 1, "b": [1, 2.5, None, True, False]},
    "list": lambda: [1, "two", 3.0, []],
    "str": lambda: "héllo ✓",
    "none": lambda: None,
    "int": lambda: 42,
    "float": lambda: 0.1,
    "float_nan": lambda: float("nan"),
    "float_inf": lambda: float("-inf"),
    "decimal": lambda: decimal.Decimal("1.10"),
    "decimal_nested": lambda: {"price": decimal.Decimal("19.99"), "qty": [decimal.Decimal("3"), decimal.Decimal("-0")],
                               "big": decimal.Decimal("12345678901234567890.000001"), "exp": decimal.Decimal("1E+3")},
    "decimal_nan": lambda: decimal.Decimal("NaN"),
    "decimal_inf": lambda: {"x": decimal.Decimal("-Infinity")},
    "tuple": lambda: (1, (2, 3)),
    "namedtuple": lambda: Point(1, 2),
    "bytes": lambda: b"\x00\xffraw",
    "empty_bytes": lambda: b"",
    "nested_bytes": lambda: {"b": b"caf\xc3\xa9"},
    "unicode_keys": lambda: {"ключ": "значение", 1: "int key", None: "none key", 2.5: True},
    "set": lambda: {1, 2},
    "object": lambda: {"o": object()},
    "circular": _circular,
    "bytearray": lambda: bytearray(b"ab"),
}


def _validate(amount):
    if amount > 100:
        raise PaymentDeclined(f"amount {amount} is over the limit")
    return amount


def _recurse(n):
    return _recurse(n + 1)


def dispatch(event, context):
    do = event["do"] if isinstance(event, dict) else "echo"
    if do == "value":
        return VALUES[event["name"]]()
    if do == "echo":
        return {"type": type(event).__name__, "repr": repr(event)}
    if do == "raise":
        return _validate(event["amount"])
    if do == "raise_value":
        raise ValueError(event.get("message", ""))
    if do == "raise_empty":
        raise RuntimeError()
    if do == "raise_chained":
        try:
            {}["missing"]
        except KeyError as e:
            raise LookupError("wrapped") from e
    if do == "recurse":
        return _recurse(0)
    if do == "log":
        print("plain print", 1, {"k": "v"})
        print("to stderr", file=sys.stderr)
        logging.getLogger().warning("root warning %s", 42)
        logging.getLogger("app").error("app error", extra={"order_id": 7})
        logging.info("info line")
        logging.debug("debug line")
        try:
            1 / 0
        except ZeroDivisionError:
            logging.exception("caught it")
        context.log("context.log line\n")
        sys.stdout.write("no newline")
        print()
        sys.stderr.write("stderr without newline, ")
        sys.stdout.write("then stdout\n")
        print("unicode ✓ ünï")
        return "logged"
    if do == "context":
        first = context.get_remaining_time_in_millis()
        time.sleep(0.05)
        second = context.get_remaining_time_in_millis()
        cc = context.client_context
        return {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "tenant_id": context.tenant_id,
            "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
            "client_context": None if cc is None else {"custom": cc.custom, "env": cc.env, "client": repr(cc.client)},
            "w3c": context.w3c(),
            "repr": repr(context),
            "public": sorted(n for n in dir(context) if not n.startswith("_")),
            "type": type(context).__name__,
            "trace": os.environ.get("_X_AMZN_TRACE_ID"),
            "remaining": [first, second],
        }
    if do == "modules":
        return sorted(m for m, module in sys.modules.items()
                      if module is not None and m.split(".")[0] in ("lambdalab", "awslambdaric", "simplejson"))
    if do == "exit":
        sys.exit(3)
    raise AssertionError(f"unknown action {do!r}")


def ping(event, context):
    return event
'''

INIT_MODULES = {
    "syntax_bad.py": "def handler(event, context):\n    return (\n",
    "import_bad.py": "import does_not_exist_xyz\n\ndef handler(event, context):\n    return 1\n",
    "raises_at_import.py": (
        "def load_config():\n    raise ValueError('config missing')\n\nload_config()\n\n"
        "def handler(event, context):\n    return 1\n"
    ),
    "pkg/__init__.py": "",
    "pkg/inner.py": "def handler(event, context):\n    return {'from': __name__}\n",
}


@pytest.fixture(scope="module")
def code_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("code")
    (root / "handlers.py").write_text(HANDLERS_PY, encoding="utf-8")
    for name, text in INIT_MODULES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module", autouse=True)
def long_header_lines():
    # A deep traceback's X-Ray cause header (up to 1 MiB) is longer than http.server's 64 KiB line limit.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(http.client, "_MAXLINE", 2 * 1024 * 1024)
        yield


# --------------------------------------------------------------------------- Runtime API server

@dataclass
class Event:
    body: bytes
    headers: dict[str, str]
    status: int = 200


@dataclass
class Posted:
    """One POST the worker made: an invocation response or error, or an init error."""

    kind: str  # "response" | "error" | "init_error"
    request_id: str | None
    headers: dict[str, str]  # names lower-cased
    body: bytes
    client_port: int

    def json(self):
        return json.loads(self.body)

    @property
    def xray_cause(self):
        raw = self.headers.get("lambda-runtime-function-xray-error-cause")
        return None if raw is None else json.loads(raw)


class _ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _ApiHttpServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler.log_message's signature
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.api.close_after_reply:
            self.close_connection = True

    def do_GET(self) -> None:
        if self.path != f"{API}/invocation/next":
            return self._reply(404)
        api = self.server.api
        api.note_next(self.client_address[1])
        event = api.take_event()
        if event is None:
            return self._reply(500)
        self._reply(event.status, event.body, event.headers)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        parts = self.path[len(API):].strip("/").split("/")
        if parts == ["init", "error"]:
            kind, request_id = "init_error", None
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            kind, request_id = parts[2], parts[1]
        else:
            return self._reply(404)
        headers = {name.lower(): value for name, value in self.headers.items()}
        status = self.server.api.record(Posted(kind, request_id, headers, body, self.client_address[1]))
        self._reply(status)


class _ApiHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    api: "RuntimeApiServer"

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # workers are killed mid-connection on purpose
            super().handle_error(request, client_address)


class RuntimeApiServer:
    """A test-only Lambda Runtime API on 127.0.0.1: queue events, read back what the worker posted."""

    def __init__(self, post_status: dict[str, int] | None = None, close_after_reply: bool = False) -> None:
        self.post_status = post_status or {}
        self.close_after_reply = close_after_reply
        self.posts: list[Posted] = []
        self.next_arrivals: list[float] = []
        self.client_ports: set[int] = set()
        self._events: queue.Queue[Event] = queue.Queue()
        self._changed = threading.Condition()
        self._closed = False
        self._http = _ApiHttpServer(("127.0.0.1", 0), _ApiHandler)
        self._http.api = self
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> RuntimeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._closed = True
        self._http.shutdown()
        self._http.server_close()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._http.server_port}"

    # server side
    def note_next(self, port: int) -> None:
        with self._changed:
            self.next_arrivals.append(time.perf_counter())
            self.client_ports.add(port)
            self._changed.notify_all()

    def take_event(self) -> Event | None:
        while not self._closed:
            try:
                return self._events.get(timeout=0.05)
            except queue.Empty:
                continue
        return None

    def record(self, posted: Posted) -> int:
        with self._changed:
            self.posts.append(posted)
            self.client_ports.add(posted.client_port)
            self._changed.notify_all()
        return self.post_status.get(posted.kind, 202)

    # test side
    def push(self, request_id: str, payload: object = None, *, body: bytes | None = None,
             content_type: str | None = "application/json", headers: dict[str, str | None] | None = None,
             status: int = 200) -> None:
        data = body if body is not None else json.dumps(payload).encode()
        all_headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + DEADLINE_MS),
            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
        }
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        for name, value in (headers or {}).items():  # None removes a default header
            if value is None:
                all_headers.pop(name, None)
            else:
                all_headers[name] = value
        self._events.put(Event(data, all_headers, status))

    def invoke(self, request_id: str, payload: object = None, **kwargs) -> Posted:
        self.push(request_id, payload, **kwargs)
        return self.wait_post(lambda p: p.request_id == request_id)

    def wait_post(self, match: Callable[[Posted], bool], timeout: float = WAIT_S) -> Posted:
        def found() -> Posted | None:
            return next((p for p in self.posts if match(p)), None)

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"the worker posted nothing matching within {timeout} s; posts: {self.posts}")
            return found()

    def wait_next_count(self, count: int, timeout: float = WAIT_S) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.next_arrivals) >= count, timeout):
                raise AssertionError(f"the worker did not reach /next {count} time(s) within {timeout} s")


# --------------------------------------------------------------------------- workers

def worker_env(code_dir: Path, api: RuntimeApiServer, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(code_dir),
        "PYTHONPATH": str(code_dir),
        "AWS_LAMBDA_FUNCTION_NAME": "bootstrap-check",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bootstrap-check",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_REGION": "us-east-1",
    }
    env.update(extra or {})
    return env


class Worker:
    """A worker process whose stdout and stderr go to one pipe, drained as the runtime would."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, pass_fds: tuple[int, ...] = ()) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, pass_fds=pass_fds)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.exit_code: int | None = None  # set only when the worker ended by itself

    def _drain(self) -> None:
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            self._chunks.append(chunk)

    def wait_exit(self, timeout: float = WAIT_S) -> int:
        self.exit_code = self.proc.wait(timeout)
        return self.exit_code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(WAIT_S)
        self._reader.join(WAIT_S)
        self.proc.stdout.close()

    @property
    def output(self) -> str:
        return b"".join(self._chunks).decode("utf-8")


def worker_command(client: str, handler: str, launcher: str | None = None) -> list[str]:
    if launcher is not None:
        return [sys.executable, "-c", launcher, handler]
    return [sys.executable, "-m", CLIENT_MODULES[client], handler]


@dataclass
class Observation:
    """Everything one client did for one scenario that the runtime could observe."""

    client: str
    posts: list[Posted]
    output: str
    exit_code: int | None
    connections: int
    results: dict = field(default_factory=dict)

    @property
    def normalised_output(self) -> str:
        return normalise(self.output)

    def post(self, request_id: str) -> Posted:
        return next(p for p in self.posts if p.request_id == request_id)

    @property
    def init_error(self) -> Posted | None:
        return next((p for p in self.posts if p.kind == "init_error"), None)


Steps = Callable[[RuntimeApiServer, Worker], dict]


def observe(client: str, code_dir: Path, handler: str, steps: Steps, *, env: dict[str, str] | None = None,
            post_status: dict[str, int] | None = None, launcher: str | None = None,
            pass_fds: tuple[int, ...] = ()) -> Observation:
    with RuntimeApiServer(post_status) as api:
        worker = Worker(worker_command(client, handler, launcher), worker_env(code_dir, api, env), code_dir, pass_fds)
        try:
            results = steps(api, worker) or {}
        finally:
            worker.stop()
        return Observation(client, list(api.posts), worker.output, worker.exit_code, len(api.client_ports), results)


def observe_both(*args, **kwargs) -> dict[str, Observation]:
    return {client: observe(client, *args, **kwargs) for client in CLIENTS}


def normalise(text: str) -> str:
    text = TIMESTAMP.sub("<time>", text)
    return RUNTIME_LOG_MS.sub("[ERROR] [<ms>] LAMBDA_RUNTIME", text)


def assert_posts_match(obs: dict[str, Observation], ignore_body_of: Callable[[Posted], object] | None = None) -> None:
    """Same posts, in the same order, with the same bodies, content types and X-Ray causes."""
    a, b = obs["awslambdaric"], obs["bootstrap"]
    assert [(p.kind, p.request_id) for p in b.posts] == [(p.kind, p.request_id) for p in a.posts]
    for pa, pb in zip(a.posts, b.posts):
        where = f"{pa.kind} {pa.request_id}"
        if ignore_body_of is None:
            assert pb.body == pa.body, where
        else:
            assert ignore_body_of(pb) == ignore_body_of(pa), where
        assert pb.headers.get("content-type") == pa.headers.get("content-type"), where
        assert pb.headers.get("lambda-runtime-invocation-id") == pa.headers.get("lambda-runtime-invocation-id"), where
        assert pb.xray_cause == pa.xray_cause, where
        if pb.kind in ("error", "init_error"):
            # awslambdaric sends this header on init errors only; the bootstrap on both.
            assert pb.headers["lambda-runtime-function-error-type"] == pb.json()["errorType"], where


def assert_same_observation(obs: dict[str, Observation]) -> None:
    assert_posts_match(obs)
    a, b = obs["awslambdaric"], obs["bootstrap"]
    assert b.normalised_output == a.normalised_output
    assert b.exit_code == a.exit_code
    assert a.connections == b.connections == 1  # one keep-alive connection for everything


# --------------------------------------------------------------------------- comparisons

VALUE_NAMES = (
    "dict", "list", "str", "none", "int", "float", "float_nan", "float_inf", "decimal", "decimal_nested",
    "decimal_nan", "decimal_inf", "tuple", "namedtuple", "bytes", "empty_bytes", "nested_bytes", "unicode_keys",
    "set", "object", "circular", "bytearray",
)


def invoke_values(names: tuple[str, ...]) -> Steps:
    def steps(api: RuntimeApiServer, worker: Worker) -> dict:
        for name in names:
            api.invoke(f"val-{name}", {"do": "value", "name": name})
        return {}
    return steps


def test_results_and_marshal_errors(code_dir: Path) -> None:
    obs = observe_both(code_dir, "handlers.dispatch", invoke_values(VALUE_NAMES))
    assert_same_observation(obs)
    for o in obs.values():
        assert o.post("val-dict").json() == {"a": 1, "b": [1, 2.5, None, True, False]}
        assert o.post("val-none").body == b"null"
        assert o.post("val-str").body == b'"h\\u00e9llo \\u2713"'
        assert o.post("val-decimal").body == b"1.10"
        assert o.post("val-decimal_nested").body == (
            b'{"price": 19.99, "qty": [3, -0], "big": 12345678901234567890.000001, "exp": 1E+3}')
        assert o.post("val-decimal_nan").body == b"NaN"
        assert o.post("val-namedtuple").json() == {"x": 1, "y": 2}
        assert o.post("val-nested_bytes").json() == {"b": "café"}
        assert o.post("val-bytes").body == b"\x00\xffraw"
        assert o.post("val-bytes").headers["content-type"] == "application/unknown"
        assert o.post("val-dict").headers["content-type"] == "application/json"
        marshal = o.post("val-set")
        assert marshal.kind == "error"
        assert marshal.json() == {
            "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
            "errorType": "Runtime.MarshalError", "requestId": "val-set", "stackTrace": []}
        assert marshal.xray_cause["exceptions"][0]["type"] == "LambdaValidationError"
        assert o.post("val-circular").json()["errorMessage"].startswith("Unable to marshal response: Circular")
        assert ("[ERROR] Runtime.MarshalError: Unable to marshal response: Object of type set is not JSON "
                "serializable\rTraceback (most recent call last):\n") in o.output


def exception_steps(api: RuntimeApiServer, worker: Worker) -> dict:
    api.invoke("err-declined", {"do": "raise", "amount": 250})
    api.invoke("err-ok", {"do": "raise", "amount": 5})
    api.invoke("err-unicode", {"do": "raise_value", "message": "bad ünï ✓"})
    api.invoke("err-empty", {"do": "raise_empty"})
    api.invoke("err-chained", {"do": "raise_chained"})
    api.invoke("err-recursion", {"do": "recurse"})
    api.invoke("err-after", {"do": "value", "name": "int"})
    return {}


def test_handler_exceptions(code_dir: Path) -> None:
    obs = observe_both(code_dir, "handlers.dispatch", exception_steps)
    assert_same_observation(obs)
    handlers_py = str(code_dir / "handlers.py")
    for o in obs.values():
        declined = o.post("err-declined").json()
        assert declined["errorType"] == "PaymentDeclined"
        assert declined["errorMessage"] == "amount 250 is over the limit"
        assert declined["requestId"] == "err-declined"
        # The runtime's own frames are stripped: the trace starts in the handler.
        assert len(declined["stackTrace"]) == 2
        assert declined["stackTrace"][0].startswith(f'  File "{handlers_py}", line ')
        assert declined["stackTrace"][0].endswith(", in dispatch\n    return _validate(event[\"amount\"])\n")
        assert "in _validate" in declined["stackTrace"][1]
        assert o.post("err-ok").body == b"5"
        assert o.post("err-empty").json()["errorMessage"] == ""
        assert o.post("err-chained").json()["errorType"] == "LookupError"
        recursion = o.post("err-recursion").json()
        assert recursion["errorType"] == "RecursionError"
        assert recursion["stackTrace"][-1].startswith("  [Previous line repeated ")
        assert o.post("err-after").body == b"42"
        log_line = ("[ERROR] PaymentDeclined: amount 250 is over the limit\rTraceback (most recent call last):\r"
                    f"\u00a0\u00a0File \"{handlers_py}\", line ")
        assert log_line in o.output


def decoding_steps(api: RuntimeApiServer, worker: Worker) -> dict:
    api.invoke("dec-bad-json", body=b"{not json")
    api.invoke("dec-empty", body=b"")
    api.invoke("dec-text", body=b'{"do": "x"}', content_type="text/plain")
    api.invoke("dec-charset", body=b'[1]', content_type="application/json; charset=utf-8")
    api.invoke("dec-bad-utf8", body=b'"\xff"')
    api.invoke("dec-nan", body=b'[1, NaN]')
    api.invoke("dec-invocation-id", {"do": "value", "name": "int"}, headers={"Lambda-Runtime-Invocation-Id": "inv-1"})
    return {}


def test_event_decoding(code_dir: Path) -> None:
    obs = observe_both(code_dir, "handlers.dispatch", decoding_steps)
    assert_same_observation(obs)
    for o in obs.values():
        bad = o.post("dec-bad-json").json()
        assert bad["errorType"] == "Runtime.UnmarshalError"
        assert bad["errorMessage"].startswith("Unable to unmarshal input: Expecting property name")
        assert o.post("dec-empty").json()["errorMessage"] == (
            "Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)")
        assert o.post("dec-nan").json()["errorType"] == "Runtime.UnmarshalError"  # simplejson rejects NaN
        # Only "application/json" is decoded; anything else reaches the handler as bytes.
        assert o.post("dec-text").json() == {"type": "bytes", "repr": "b'{\"do\": \"x\"}'"}
        assert o.post("dec-charset").json() == {"type": "bytes", "repr": "b'[1]'"}
        assert o.post("dec-invocation-id").headers["lambda-runtime-invocation-id"] == "inv-1"


def context_steps(api: RuntimeApiServer, worker: Worker) -> dict:
    api.invoke("ctx-full", {"do": "context"}, headers={
        "Lambda-Runtime-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "Lambda-Runtime-Client-Context": json.dumps({
            "custom": {"k": "v"}, "env": {"platform": "ios"},
            "client": {"app_title": "Shop", "installation_id": "i-1", "extra": "ignored"},
            "w3c": {"traceparent": "00-abc-def-01", "baggage": 5, "other": "x"}}),
        "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}),
        "Lambda-Runtime-Aws-Tenant-Id": "tenant-7",
    })
    api.invoke("ctx-bare", {"do": "context"}, headers={"Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN + ":live"})
    api.invoke("ctx-bad-client-context", {"do": "context"}, headers={"Lambda-Runtime-Client-Context": "{oops"})
    api.invoke("ctx-no-arn", {"do": "context"}, headers={"Lambda-Runtime-Invoked-Function-Arn": None})
    return {}


def without_remaining(posted: Posted) -> object:
    body = posted.json()
    if isinstance(body, dict):
        body.pop("remaining", None)
    return body


def test_context_and_trace_id(code_dir: Path) -> None:
    obs = observe_both(code_dir, "handlers.dispatch", context_steps)
    assert_posts_match(obs, ignore_body_of=without_remaining)
    assert obs["bootstrap"].normalised_output == obs["awslambdaric"].normalised_output
    for o in obs.values():
        full = o.post("ctx-full").json()
        assert full["function_name"] == "bootstrap-check"
        assert full["memory_limit_in_mb"] == "256"  # a string, as in Lambda
        assert full["function_version"] == "$LATEST"
        assert full["invoked_function_arn"] == FUNCTION_ARN
        assert full["aws_request_id"] == "ctx-full"
        assert full["log_group_name"] == "/aws/lambda/bootstrap-check"
        assert full["tenant_id"] == "tenant-7"
        assert full["identity"] == ["id-1", "pool-1"]
        assert full["client_context"]["custom"] == {"k": "v"}
        assert "app_title=Shop" in full["client_context"]["client"]
        assert full["w3c"] == {"traceparent": "00-abc-def-01"}
        assert full["trace"].startswith("Root=1-5759e988")
        assert full["type"] == "LambdaContext"
        assert {"get_remaining_time_in_millis", "log", "w3c", "identity", "client_context"} <= set(full["public"])
        first, second = full["remaining"]
        assert 0 < second < first <= DEADLINE_MS
        assert first - second >= 40
        bare = o.post("ctx-bare").json()
        assert bare["trace"] is None  # the previous invocation's trace id does not leak
        assert bare["client_context"] is None and bare["identity"] == [None, None]
        assert bare["invoked_function_arn"] == FUNCTION_ARN + ":live"
        assert o.post("ctx-no-arn").json()["invoked_function_arn"] == ""
        bad = o.post("ctx-bad-client-context").json()
        assert bad["errorType"] == "Runtime.LambdaContextUnmarshalError"
        assert bad["errorMessage"].startswith("Unable to parse Client Context JSON: ")


def log_steps(api: RuntimeApiServer, worker: Worker) -> dict:
    api.invoke("log-1", {"do": "log"})
    api.invoke("log-2", {"do": "raise", "amount": 1000})
    return {}


def test_log_output_text(code_dir: Path) -> None:
    obs = observe_both(code_dir, "handlers.dispatch", log_steps)
    assert_same_observation(obs)
    for o in obs.values():
        lines = o.normalised_output.split("\n")
        assert lines[:6] == [
            "plain print 1 {'k': 'v'}",
            "to stderr",
            "[WARNING]\t<time>\tlog-1\troot warning 42",
            "[ERROR]\t<time>\tlog-1\tapp error",
            "[ERROR]\t<time>\tlog-1\tcaught it",
            "Traceback (most recent call last):",
        ]
        assert "context.log line\nno newline\nstderr without newline, then stdout\nunicode ✓ ünï\n" in o.output
        assert "info line" not in o.output  # the root logger stays at WARNING


def test_log_output_json_with_level(code_dir: Path) -> None:
    env = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"}
    obs = observe_both(code_dir, "handlers.dispatch", log_steps, env=env)
    assert_same_observation(obs)
    for o in obs.values():
        records = [json.loads(line) for line in o.output.splitlines() if line.startswith("{")]
        by_message = {r.get("message", r.get("errorMessage")): r for r in records}
        assert by_message["info line"]["level"] == "INFO"
        assert by_message["info line"]["requestId"] == "log-1"
        assert by_message["app error"]["order_id"] == 7
        assert by_message["caught it"]["errorType"] == "ZeroDivisionError"
        assert by_message["amount 1000 is over the limit"]["level"] == "ERROR"
        assert "debug line" not in o.output


def test_python312_json_keeps_unicode(code_dir: Path) -> None:
    steps = invoke_values(("str", "unicode_keys", "decimal_nested"))

    def more(api: RuntimeApiServer, worker: Worker) -> dict:
        steps(api, worker)
        api.invoke("err-unicode", {"do": "raise_value", "message": "ünï ✓"})
        return {}

    obs = observe_both(code_dir, "handlers.dispatch", more, env={"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"})
    assert_same_observation(obs)
    for o in obs.values():
        assert o.post("val-str").body == '"héllo ✓"'.encode()
        assert o.post("err-unicode").json()["errorMessage"] == "ünï ✓"


def test_telemetry_log_fd_frames(code_dir: Path) -> None:
    frames: dict[str, list[tuple[bytes, str]]] = {}
    observations = {}
    for client in CLIENTS:
        read_fd, write_fd = os.pipe()
        try:
            env = {"_LAMBDA_TELEMETRY_LOG_FD": str(write_fd), "AWS_LAMBDA_LOG_LEVEL": "INFO"}
            observations[client] = observe(client, code_dir, "handlers.dispatch", log_steps, env=env,
                                           pass_fds=(write_fd,))
        finally:
            os.close(write_fd)
        with os.fdopen(read_fd, "rb") as reader:
            frames[client] = parse_frames(reader.read())
    assert_posts_match(observations)
    assert frames["bootstrap"] == frames["awslambdaric"]
    kinds = {frame_type for frame_type, _ in frames["bootstrap"]}
    assert 0xA55A000F.to_bytes(4, "big") in kinds  # INFO, text
    assert 0xA55A0017.to_bytes(4, "big") in kinds  # ERROR, text
    assert any(message.startswith("[ERROR] PaymentDeclined") for _, message in frames["bootstrap"])


def parse_frames(data: bytes) -> list[tuple[bytes, str]]:
    frames = []
    while data:
        frame_type, length = data[:4], int.from_bytes(data[4:8], "big")
        timestamp_us = int.from_bytes(data[8:16], "big")
        assert abs(timestamp_us / 1e6 - time.time()) < 600
        frames.append((frame_type, normalise(data[16:16 + length].decode("utf-8"))))
        data = data[16 + length:]
    return frames


def test_ric_runs_as_a_top_level_package(code_dir: Path, tmp_path: Path) -> None:
    # A later step takes lambdalab off the workers' import path: ric/ must work on its own.
    shutil.copytree(RIC_DIR, tmp_path / "ric", ignore=shutil.ignore_patterns("__pycache__"))
    def steps(api: RuntimeApiServer, worker: Worker) -> dict:
        invoke_values(VALUE_NAMES)(api, worker)
        api.invoke("raise", {"do": "raise", "amount": -1})
        api.invoke("log", {"do": "log"})
        return {"modules": api.invoke("modules", {"do": "modules"}).json()}

    reference = observe("awslambdaric", code_dir, "handlers.dispatch", steps)
    standalone = observe("bootstrap", code_dir, "handlers.dispatch", steps, launcher=TOP_LEVEL_LAUNCHER,
                         env={"PYTHONPATH": os.pathsep.join([str(code_dir), str(tmp_path)])})
    assert not [m for m in standalone.results["modules"] if m.startswith("lambdalab")]
    reference.posts = [p for p in reference.posts if p.request_id != "modules"]
    standalone.posts = [p for p in standalone.posts if p.request_id != "modules"]
    assert_posts_match({"awslambdaric": reference, "bootstrap": standalone})
    assert standalone.normalised_output == reference.normalised_output


def test_ric_imports_only_itself_the_stdlib_and_simplejson() -> None:
    allowed = set(sys.stdlib_module_names) | {"simplejson", "awslambdaric"}  # awslambdaric: the snapshot's choice
    for path in sorted(RIC_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                tops = [] if node.level else [node.module.split(".")[0]]
            else:
                continue
            assert set(tops) <= allowed, f"{path.name}:{node.lineno} imports {tops}"


INIT_ERRORS = {
    "missing_module.handler": ("Runtime.ImportModuleError", "Unable to import module 'missing_module': "
                               "No module named 'missing_module'"),
    "import_bad.handler": ("Runtime.ImportModuleError", "Unable to import module 'import_bad': "
                           "No module named 'does_not_exist_xyz'"),
    "handlers.nope": ("Runtime.HandlerNotFound", "Handler 'nope' missing on module 'handlers'"),
    "nodot": ("Runtime.MalformedHandlerName", "Bad handler 'nodot': not enough values to unpack (expected 2, got 1)"),
    "sys.handler": ("Runtime.BuiltInModuleConflict", "Cannot use built-in module sys as a handler module"),
    "syntax_bad.handler": ("Runtime.UserCodeSyntaxError", "Syntax error in module 'syntax_bad': "),
    "raises_at_import.handler": ("ValueError", "config missing"),
}


def wait_for_exit(api: RuntimeApiServer, worker: Worker) -> dict:
    worker.wait_exit()
    return {}


@pytest.mark.parametrize("handler", sorted(INIT_ERRORS))
def test_init_errors(code_dir: Path, handler: str) -> None:
    obs = observe_both(code_dir, handler, wait_for_exit)
    assert_same_observation(obs)
    error_type, message = INIT_ERRORS[handler]
    for o in obs.values():
        assert o.exit_code == 1
        init_error = o.init_error
        assert init_error is not None and [p.kind for p in o.posts] == ["init_error"]
        body = init_error.json()
        assert body["errorType"] == error_type
        assert body["errorMessage"].startswith(message)
        assert body["requestId"] == ""
        assert init_error.headers["lambda-runtime-function-error-type"] == error_type
        assert "[WARNING]\t<time>\t\tLAMBDA_WARNING: Unhandled exception." in o.normalised_output
        assert f"[ERROR] {error_type}: {body['errorMessage']}\rTraceback (most recent call last):" in o.output
    trace = obs["bootstrap"].init_error.json()["stackTrace"]
    if handler == "syntax_bad.handler":
        assert trace == [f'  File "{code_dir / "syntax_bad.py"}" Line 2\n        return (\n']
    elif handler == "raises_at_import.handler":
        assert "importlib/__init__.py" in trace[0]  # bootstrap frames stripped, importlib's kept
        assert "in load_config" in trace[-1]
    else:
        assert trace == []


def test_init_error_in_json_format_on_a_preview_runtime(code_dir: Path) -> None:
    env = {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.15", "AWS_LAMBDA_LOG_FORMAT": "JSON"}
    obs = observe_both(code_dir, "raises_at_import.handler", wait_for_exit, env=env)
    assert_same_observation(obs)
    for o in obs.values():
        records = [json.loads(line) for line in o.output.splitlines()]
        assert [r["level"] for r in records] == ["WARNING", "WARNING", "ERROR"]
        assert "This is a preview runtime version" in records[0]["message"]
        assert records[1]["message"].startswith("LAMBDA_WARNING: Unhandled exception.")
        assert records[2]["errorType"] == "ValueError" and records[2]["stackTrace"]


def test_handler_in_package_path(code_dir: Path) -> None:
    def steps(api: RuntimeApiServer, worker: Worker) -> dict:
        api.invoke("pkg-1", {})
        return {}

    obs = observe_both(code_dir, "pkg/inner.handler", steps)
    assert_same_observation(obs)
    assert obs["bootstrap"].post("pkg-1").json() == {"from": "pkg.inner"}


def test_sys_exit_in_handler_ends_the_worker(code_dir: Path) -> None:
    def steps(api: RuntimeApiServer, worker: Worker) -> dict:
        api.invoke("exit-0", {"do": "value", "name": "int"})
        api.push("exit-1", {"do": "exit"})
        worker.wait_exit()
        return {}

    obs = observe_both(code_dir, "handlers.dispatch", steps)
    assert_same_observation(obs)
    assert obs["bootstrap"].exit_code == 3


def last_line(text: str) -> str:
    return text.rstrip("\n").rsplit("\n", 1)[-1]


def test_rejected_response_post_ends_the_worker(code_dir: Path) -> None:
    def steps(api: RuntimeApiServer, worker: Worker) -> dict:
        api.push("too-big", {"do": "value", "name": "dict"})
        worker.wait_exit()
        return {}

    obs = observe_both(code_dir, "handlers.dispatch", steps, post_status={"response": 413})
    assert_posts_match(obs)
    for o in obs.values():
        assert o.exit_code == 1
        assert ("[ERROR] [<ms>] LAMBDA_RUNTIME Failed to post handler success response. Http response code: 413. \n"
                in o.normalised_output)
        assert last_line(o.output) == "RuntimeError: Failed to post invocation response"


def test_rejected_init_error_post(code_dir: Path) -> None:
    obs = observe_both(code_dir, "handlers.nope", wait_for_exit, post_status={"init_error": 500})
    assert_posts_match(obs)
    for o in obs.values():
        assert o.exit_code == 1
        assert last_line(o.output).endswith(
            "LambdaRuntimeClientError: Request to Lambda Runtime '/2018-06-01/runtime/init/error' endpoint failed. "
            "Reason: '500'. Response body: 'b'''")


# --------------------------------------------------------------------------- bootstrap only

def test_failed_next_exits_with_status_1(code_dir: Path) -> None:
    # awslambdaric 4.2.2 dies of SIGSEGV here; the bootstrap logs the same line and exits 1.
    def steps(api: RuntimeApiServer, worker: Worker) -> dict:
        api.invoke("before", {"do": "value", "name": "int"})
        api.push("broken", {}, status=500)
        worker.wait_exit()
        return {}

    o = observe("bootstrap", code_dir, "handlers.dispatch", steps)
    assert o.exit_code == 1
    assert ("[ERROR] [<ms>] LAMBDA_RUNTIME Failed to get next invocation. Http Response code: 500\n"
            in o.normalised_output)
    assert last_line(o.output) == "RuntimeError: Failed to get next"


def test_worker_imports_only_itself(code_dir: Path) -> None:
    def steps(api: RuntimeApiServer, worker: Worker) -> dict:
        return {"modules": api.invoke("modules", {"do": "modules"}).json()}

    o = observe("bootstrap", code_dir, "handlers.dispatch", steps)
    # The packages on the way to the client (their __init__ files import nothing), then the client's own modules.
    assert [m for m in o.results["modules"] if not m.startswith("simplejson")] == [
        "lambdalab", "lambdalab.runtime", "lambdalab.runtime.ric", "lambdalab.runtime.ric.bootstrap",
        "lambdalab.runtime.ric.client", "lambdalab.runtime.ric.context", "lambdalab.runtime.ric.exceptions",
        "lambdalab.runtime.ric.logs", "lambdalab.runtime.ric.marshalling"]


@pytest.fixture
def bootstrap_module():
    import lambdalab.runtime.ric.client

    return lambdalab.runtime.ric.client


def test_client_keeps_one_nodelay_connection(bootstrap_module) -> None:
    with RuntimeApiServer() as api:
        client = bootstrap_module.LambdaRuntimeClient(api.address)
        for n in range(3):
            api.push(f"r{n}", {"n": n}, headers={"Lambda-Runtime-Deadline-Ms": "1234x"})
            request = client.wait_next_invocation()
            assert (request.invoke_id, request.event_body, request.deadline_time_in_ms) == \
                (f"r{n}", b'{"n": %d}' % n, 1234)
            assert request.invoked_function_arn == FUNCTION_ARN and request.x_amzn_trace_id is None
            assert client._conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            client.post_invocation_result(request.invoke_id, '{"ok": true}')
        api.wait_post(lambda p: p.request_id == "r2")
        assert len(api.client_ports) == 1
        assert [p.json() for p in api.posts] == [{"ok": True}] * 3


def test_client_reconnects_when_the_server_closed_the_connection(bootstrap_module) -> None:
    with RuntimeApiServer(close_after_reply=True) as api:
        client = bootstrap_module.LambdaRuntimeClient(api.address)
        for n in range(3):
            api.push(f"r{n}", {"n": n})
            request = client.wait_next_invocation()
            client.post_invocation_result(request.invoke_id, b"1", "application/json")
        assert [p.request_id for p in api.posts] == ["r0", "r1", "r2"]
        assert len(api.client_ports) == 6  # a fresh connection for every request


def test_client_refuses_a_next_without_request_id(bootstrap_module, capsys) -> None:
    with RuntimeApiServer() as api:
        client = bootstrap_module.LambdaRuntimeClient(api.address)
        api.push("", {})
        with pytest.raises(RuntimeError, match="Failed to get next"):
            client.wait_next_invocation()
    assert "Failed to find header lambda-runtime-aws-request-id in response" in capsys.readouterr().out


ORPHAN_PARENT = textwrap.dedent("""
    import subprocess, sys, json, time
    spec = json.loads(sys.argv[1])
    worker = subprocess.Popen(spec["command"], env=spec["env"], cwd=spec["cwd"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(worker.pid, flush=True)
    time.sleep(120)
""")


def run_worker_under_parent(code_dir: Path, api: RuntimeApiServer,
                            launcher: str | None) -> tuple[subprocess.Popen, int]:
    spec = {"command": worker_command("bootstrap", "handlers.ping", launcher),
            "env": worker_env(code_dir, api), "cwd": str(code_dir)}
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN_PARENT, json.dumps(spec)],
                              stdout=subprocess.PIPE, text=True)
    worker_pid = int(parent.stdout.readline())
    api.wait_next_count(1)
    return parent, worker_pid


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def kill_if_alive(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_worker_exits_when_its_parent_dies_by_polling(code_dir: Path) -> None:
    # ctypes hidden: no PR_SET_PDEATHSIG, so only the getppid() poll can notice.
    with RuntimeApiServer() as api:
        parent, worker_pid = run_worker_under_parent(code_dir, api, NO_CTYPES_LAUNCHER)
        try:
            assert api.invoke("alive", {"x": 1}).json() == {"x": 1}
            parent.kill()
            parent.wait()
            assert wait_gone(worker_pid, timeout=5.0)
        finally:
            kill_if_alive(worker_pid)
            parent.stdout.close()


def test_frozen_worker_is_killed_when_its_parent_dies(code_dir: Path) -> None:
    # A stopped worker cannot poll; on Linux the kernel's parent-death signal still ends it.
    with RuntimeApiServer() as api:
        parent, worker_pid = run_worker_under_parent(code_dir, api, None)
        try:
            time.sleep(0.2)  # the watchdog thread asks for the signal right after start-up
            os.kill(worker_pid, signal.SIGSTOP)
            parent.kill()
            parent.wait()
            assert wait_gone(worker_pid, timeout=5.0)
        finally:
            kill_if_alive(worker_pid)
            parent.stdout.close()
