"""One execution environment: a worker process running a runtime interface client.

The environment owns the worker (spawned as `python -m awslambdaric module.function`, or the
project's own `lambdalab.runtime.ric` where awslambdaric is absent), its Runtime API server,
its sandbox (`lambdalab.runtime.sandbox`: /tmp, /var/task, user), its CPU limit, its log pipe,
and its lifecycle: init, invoke, freeze (SIGSTOP) while idle, thaw, a reset after a crash or
timeout (a new worker in the same sandbox, as Lambda keeps /tmp), and destruction. It runs one
invocation at a time; choosing which environment serves a request is the runtime's job.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lambdalab._util.spawn import Spawner, guarded
from lambdalab._util.timefmt import epoch_ms, utc_now
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.cpu import CpuLimit, NoLimit
from lambdalab.runtime.imports import WORKER_FLAGS, merged_layers, python_tag, runtime_site, worker_path
from lambdalab.runtime.logstream import TELEMETRY_FD_ENV, LogSplitter
from lambdalab.runtime.peers import descendants, held_by_tree
from lambdalab.runtime.processes import peak_kb
from lambdalab.runtime.runtime_api import MAX_RESPONSE_BYTES, NextInvocation, Refused, RuntimeAPIServer
from lambdalab.runtime.sandbox import HostSandbox, Sandbox, for_environment, probe

if TYPE_CHECKING:
    from lambdalab.runtime.snapstart import SnapshotTemplate

# Lambda gives INIT 10 s on on-demand functions before it fails the environment.
INIT_LIMIT_S = 10.0
_PAGE_KB = 1024
_INIT_SAMPLE_S = 0.01  # how often a starting worker's memory is sampled


def worker_command(client: str, handler: str) -> list[str]:
    """The worker's argv; on Linux the kernel kills it should the runtime die (the client also polls)."""
    module = "awslambdaric" if client == "awslambdaric" else "ric"  # ric: the runtime site's copy
    return guarded([sys.executable, *WORKER_FLAGS, "-m", module, handler])


def runtime_mismatch_line(declared: str) -> str:
    """INIT's one line when the declared runtime is not the interpreter that runs the worker."""
    v = sys.version_info
    return (f"lambdalab: this function declares runtime {declared}, but runs on the local Python "
            f"{v.major}.{v.minor}.{v.micro} ({sys.executable})")


@dataclass
class Outcome:
    """What the worker did with one invocation, before it becomes an `Invocation` record."""

    kind: str  # response | error | init_error | exit | timeout | too_large
    body: bytes = b""
    content_type: str = "application/json"
    error_type: str | None = None
    exit_status: str | None = None  # "signal: killed", "exit status 1"
    duration_ms: float = 0.0
    started_at: float = 0.0
    ended_at: float = 0.0


_NOTED: set[str] = set()  # functions whose log has said what the sandbox cannot do here
_FINISH_LOCK = threading.Lock()  # held for a check-and-set only; contention is negligible


@dataclass
class _Pending:
    nxt: NextInvocation
    done: threading.Event = field(default_factory=threading.Event)
    delivered: threading.Event = field(default_factory=threading.Event)
    t0: float = 0.0
    started_at: float = 0.0
    outcome: Outcome | None = None

    def finish(self, outcome: Outcome) -> bool:
        """First finisher wins (response, death, timeout and watchdog race)."""
        with _FINISH_LOCK:
            if self.outcome is not None:
                return False
            self.outcome = outcome
        t1 = time.perf_counter()
        outcome.duration_ms = (t1 - self.t0) * 1000 if self.t0 else 0.0
        outcome.started_at = self.started_at or time.time()
        outcome.ended_at = time.time()
        self.done.set()
        return True


def lambda_environment(config: FunctionConfig, *, runtime_api: str, tmpdir: Path | str, log_stream: str,
                       init_type: str, extra: dict[str, str], task_root: str | None = None,
                       layers_root: str | None = None) -> dict[str, str]:
    """The variables Lambda gives a worker, then the runtime's extras, then the function's own.

    `task_root` is where the worker sees the code: /var/task inside the sandbox; the code
    directory itself where there is none. `layers_root` is where it sees the merged layers
    (/opt in the sandbox); without it, the layer directories are on the path as they are.
    """
    c = config
    task_root = task_root or str(c.code_dir)
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "HOME": str(tmpdir),  # so boto3 never reads the learner's real ~/.aws
        "TMPDIR": str(tmpdir),
        # What the worker can import: the package, its layers, the runtime's libraries (imports.py),
        # named as the worker sees them (the sandbox mounts code at /var/task and layers at /opt).
        "PYTHONPATH": os.pathsep.join(worker_path(Path(task_root), (Path(layers_root),) if layers_root else c.layers)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": str(runtime_site()),
        "_HANDLER": c.handler,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": c.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(c.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
        "AWS_LAMBDA_LOG_GROUP_NAME": c.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{python_tag()}",  # the Python that really runs, whatever was declared
        "AWS_REGION": c.region,
        "AWS_DEFAULT_REGION": c.region,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        # No instance metadata service here: never let the SDK look for one off-box.
        "AWS_EC2_METADATA_DISABLED": "true",
        # Without a local cloud, SDK calls fail fast on a closed loopback port instead of
        # reaching a real AWS account.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "AWS_ACCESS_KEY_ID": "ASIALOCALLAMBDALAB00",
        "AWS_SECRET_ACCESS_KEY": "lambdalab-local-secret",
        "AWS_SESSION_TOKEN": "lambdalab-local-session",
    }
    env.update(extra)
    env.update(c.environment)
    return env


class ExecutionEnvironment:
    """A worker process plus everything Lambda gives it; serves one invocation at a time."""

    def __init__(self, config: FunctionConfig, *, client: str, spawner: Spawner,
                 cpu: CpuLimit | None = None, extra_env: dict[str, str] | None = None,
                 init_type: str = "on-demand", template: "SnapshotTemplate | None" = None,
                 layers: Path | None = None, sandbox: bool = True):
        self.config = config
        self.template = template
        self.client = client
        self.init_type = init_type
        self.id = uuid.uuid4().hex
        self.created_at = time.time()
        self.log_stream = utc_now().strftime("%Y/%m/%d/") + f"[$LATEST]{self.id}"
        self.state = "new"  # new, initializing, idle, busy, dead
        self.invocations = 0
        self.last_used = time.monotonic()
        self.init_ms: float | None = None
        self.suppressed_init_ms = 0.0  # a re-init after a crash, owed to the next invocation's Duration
        self.init_failure: Outcome | None = None
        self._peak_kb = 0  # last peak seen: a killed worker's /proc entry is gone
        self.exit_status: str | None = None
        self._cpu = cpu or NoLimit()
        self._spawner = spawner
        self._extra_env = dict(extra_env or {})
        self._cv = threading.Condition()
        self._pending: _Pending | None = None
        self._to_deliver: _Pending | None = None
        self._init_done = threading.Event()
        self._closing = False
        self._frozen = False
        self._log_lock = threading.Lock()
        self._splitter = LogSplitter()
        self._lines: list[tuple[int, str]] = []
        self.proc: subprocess.Popen | None = None
        self.pid = 0  # the worker proper: inside a sandbox, a child of `proc` in its own PID namespace
        self._spawned = threading.Event()  # `proc` and `pid` name the current worker
        self._generation = 0  # one per worker: a /next left waiting by a dead worker is not the new one's
        self._next_waiting: int | None = None  # the generation whose /next is waiting for an event
        self._watcher: threading.Thread | None = None
        # A snapshot-restored worker is forked by the template, outside any sandbox; it runs the
        # template's code, so copying the package (seconds for a big one) would be waste.
        self.sandbox: Sandbox = (HostSandbox(config, probe(), copy_code=False) if template is not None
                                 else for_environment(config, layers or merged_layers(config.layers), sandbox))
        self.tmpdir = Path(self.sandbox.tmp_path)
        self._note_once()
        self.server = RuntimeAPIServer(self)

    # -- environment variables -------------------------------------------------------------
    def environ(self) -> dict[str, str]:
        return lambda_environment(self.config, runtime_api=self.server.address, tmpdir=self.tmpdir,
                                  log_stream=self.log_stream, init_type=self.init_type, extra=self._extra_env,
                                  task_root=self.sandbox.task_root, layers_root=self.sandbox.layers_root)

    def _note_once(self) -> None:
        """Say once per function, in its log, what the sandbox cannot do on this machine."""
        if self.sandbox.note and self.config.name not in _NOTED:
            _NOTED.add(self.config.name)
            self._lines.append((epoch_ms(), self.sandbox.note))

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, init_limit_s: float | None = None) -> None:
        """Spawn the worker and wait until it asks for its first event (or fails init); INIT may
        take `init_limit_s` (Lambda's 10 s by default)."""
        limit = INIT_LIMIT_S if init_limit_s is None else init_limit_s
        self.state = "initializing"
        t0 = time.perf_counter()
        with self._cv:
            self._generation += 1
            self._spawned.clear()
            self._cv.notify_all()
        try:
            if self.template is not None:  # a restore: fork the initialised template
                self.proc = self.template.fork(self.environ())
                self.pid = self.proc.pid
            else:
                self._spawn_worker()
        except BaseException:
            self.destroy()  # the server, sandbox and cgroup exist already
            raise
        finally:
            self._spawned.set()
        os.set_blocking(self.proc.stdout.fileno(), False)
        if self.config.declared_python != python_tag():
            self._lines.append((epoch_ms(), runtime_mismatch_line(self.config.declared_python)))
        threading.Thread(target=self._read_logs, name=f"log-{self.id[:8]}", daemon=True).start()
        self._watcher = threading.Thread(target=self._watch_exit, name=f"exit-{self.id[:8]}", daemon=True)
        self._watcher.start()
        finished = self._wait_for_init(limit)
        # The sandbox's setup stands for the microVM's creation, which Lambda's Init Duration leaves out.
        setup_ms = self.sandbox.setup_ms if self.template is None else 0.0
        self.init_ms = (time.perf_counter() - t0) * 1000 - setup_ms
        if self.init_failure is None and not finished:
            self.init_failure = Outcome("init_error", error_type="Runtime.InitTimeout", body=json.dumps({
                "errorMessage": f"INIT phase did not finish within {limit:g} seconds",
                "errorType": "Runtime.InitTimeout", "requestId": "", "stackTrace": []}).encode())
        elif self.init_failure is None and self.proc.poll() is not None:
            self.init_failure = self._exit_outcome("Runtime.ExitError")
        if self.init_failure is not None:
            self.drain_logs()
            self.destroy()
            return
        self._cpu.attach(self.pid)
        self._cpu.attach(self.proc.pid)  # last: a duty cycle stops the process group it leads
        self.state = "idle"

    def _wait_for_init(self, limit_s: float) -> bool:
        """Wait up to `limit_s` for INIT to end, sampling the worker's peak memory meanwhile: a
        worker that dies before it asks for an event leaves no /proc entry to read afterwards."""
        deadline = time.monotonic() + limit_s
        while True:
            self._observe_peak()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._init_done.is_set()
            if self._init_done.wait(timeout=min(_INIT_SAMPLE_S, remaining)):
                return True

    def _spawn_worker(self) -> None:
        """Start the worker (`proc`, and `pid`, the worker proper). Its log pipe is its stdout and, as on Lambda, the
        runtime client's telemetry descriptor (a second handle on the same pipe: `logstream`)."""
        environ = self.environ()
        read_fd, write_fd = os.pipe()
        environ[TELEMETRY_FD_ENV] = str(write_fd)
        try:
            args, fds = self.sandbox.command(worker_command(self.client, self.config.handler), environ)
            proc = self._spawner.spawn(
                args=args, pass_fds=[*fds, write_fd], cwd=self.sandbox.host_cwd, env=environ,
                stdin=subprocess.DEVNULL, stdout=write_fd, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        proc.stdout = os.fdopen(read_fd, "rb", buffering=0)
        self._splitter = LogSplitter()
        self.proc = proc
        self.pid = self.sandbox.started(proc.pid)

    def reset(self) -> bool:
        """After a crash or timeout: a new worker in the same sandbox (so /tmp survives), as Lambda does.

        Its INIT is not a cold start: Lambda runs it with the next invocation (a "suppressed init")
        and counts it in that invocation's Duration, never as an Init Duration; `suppressed_init_ms`
        holds it until then. False (and the environment destroyed) when the new worker fails to start.
        """
        if self._closing:
            return False
        self.kill()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        if self.proc is not None and self.proc.stdout:
            self.drain_logs()
            with self._log_lock:
                self.proc.stdout.close()
        self._init_done.clear()
        self.init_failure = None
        self.exit_status = None
        self._peak_kb = 0
        self.start()
        self.suppressed_init_ms = self.init_ms or 0.0
        return self.init_failure is None

    def _watch_exit(self) -> None:
        proc = self.proc
        code = proc.wait()
        self.exit_status = f"signal: {signal.Signals(-code).name[3:].lower()}" if code < 0 else f"exit status {code}"
        if -code == signal.SIGKILL:
            self.exit_status = "signal: killed"
        self._init_done.set()
        with self._cv:
            pending = self._pending
        if pending is not None:
            self.drain_logs()
            pending.finish(self._exit_outcome("Runtime.ExitError", pending.nxt.request_id))
        if self.state != "busy":
            self.state = "dead"

    def _exit_outcome(self, error_type: str, request_id: str = "") -> Outcome:
        status = self.exit_status or "signal: killed"
        prefix = f"RequestId: {request_id} " if request_id else ""
        body = {"errorMessage": f"{prefix}Error: Runtime exited with error: {status}",
                "errorType": error_type}
        return Outcome("exit", body=json.dumps(body).encode(), error_type=error_type, exit_status=status)

    def freeze(self) -> None:
        if self.proc is not None and self.proc.poll() is None and not self._frozen:
            self._cpu.set_running(False)
            os.killpg(self.proc.pid, signal.SIGSTOP)
            self._frozen = True

    def thaw(self) -> None:
        if self._frozen and self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self._frozen = False
        self._cpu.set_running(True)

    @property
    def frozen(self) -> bool:
        return self._frozen

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.state != "dead"

    def _observe_peak(self) -> int:
        if self.proc is not None:
            self._peak_kb = max(self._peak_kb, peak_kb(self.pid))
        return self._peak_kb

    def peak_memory_mb(self) -> int:
        return math.ceil(self._observe_peak() / _PAGE_KB)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            tree = descendants(self.proc.pid)  # with the children that left the process group (setsid)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for pid in tree:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def destroy(self) -> None:
        """Kill the worker, stop the server, delete the temp dir. Idempotent."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            if self.proc.stdout:
                self.drain_logs()
                self.proc.stdout.close()
        self._cpu.set_running(False)
        self._cpu.close()
        self.server.close()
        self.sandbox.close()
        self.state = "dead"

    # -- one invocation --------------------------------------------------------------------
    def invoke(self, nxt: NextInvocation, timeout_s: float) -> Outcome:
        """Deliver one event and wait for the worker's answer, its death, or the deadline."""
        pending = _Pending(nxt)
        with self._cv:
            self._pending = pending
            self._to_deliver = pending
            self._cv.notify_all()
        self.state = "busy"
        self.thaw()
        if self.proc.poll() is not None:  # died while idle (e.g. killed from outside)
            pending.finish(self._exit_outcome("Runtime.ExitError", nxt.request_id))
        while not pending.done.is_set():
            # The deadline runs from delivery; a worker that never asks for the event times out too.
            remaining = (pending.t0 + timeout_s - time.perf_counter()) if pending.t0 else timeout_s
            if not pending.done.wait(timeout=max(0.0, remaining)) and (
                    not pending.t0 or time.perf_counter() >= pending.t0 + timeout_s):
                if pending.finish(Outcome("timeout")):
                    self.kill()
        outcome = pending.outcome
        if outcome.kind in ("response", "error") and self._observe_peak() > self.config.memory_mb * 1024:
            # The watchdog polls; the kernel's high-water mark catches a spike it missed.
            self.kill()
            self.exit_status = "signal: killed"
            outcome = replace(self._exit_outcome("Runtime.ExitError", nxt.request_id),
                              duration_ms=outcome.duration_ms, started_at=outcome.started_at,
                              ended_at=outcome.ended_at)
        self.drain_logs()
        with self._cv:
            self._pending = None
            self._to_deliver = None
        self.invocations += 1
        self.last_used = time.monotonic()
        if outcome.kind in ("timeout", "exit"):
            self.kill()
        return outcome

    def watchdog_check(self, memory_limit_mb: int) -> bool:
        """Kill the worker if its peak memory passed the limit; True when it did."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        if self._observe_peak() > memory_limit_mb * 1024:
            self.kill()
            return True
        return False

    # -- Runtime API callbacks (server threads) --------------------------------------------
    def accepts(self, client: tuple[str, int], server: tuple[str, int]) -> bool:
        """Whether a connection to the Runtime API comes from this environment's worker (its process tree).

        On Lambda nothing else can reach the API; here any local process could, so the peer's
        socket must be held by the worker. Where /proc cannot tell (macOS), every peer is accepted.
        """
        self._spawned.wait(timeout=30)  # a worker can connect before start() has read its pid
        proc = self.proc
        if proc is None:
            return False
        held = held_by_tree(client, server, [self.pid], proc.pid)
        return held is None or held

    def next_invocation(self) -> NextInvocation | None:
        # The worker is alive and waiting: its peak so far, so a REPORT after a crash never says 0 MB.
        self._observe_peak()
        with self._cv:
            generation = self._generation
            if self._next_waiting == generation:
                # A Lambda (default) environment runs one invocation at a time: one /next at a time.
                raise Refused("InvalidStateTransition", "another /next is already waiting for this environment's event")
            running = self._pending
            if running is not None and running.t0 and not running.done.is_set():
                # A poller started by the handler must not swallow the next event.
                raise Refused("InvalidStateTransition", "/next before the current invocation's response or error")
            self._next_waiting = generation
            if not self._init_done.is_set():
                self._init_done.set()
            try:
                self._cv.wait_for(lambda: self._to_deliver is not None or self._closing
                                  or self._generation != generation)
            finally:
                if self._next_waiting == generation:
                    self._next_waiting = None
            if self._closing or self._generation != generation:
                return None
            pending = self._to_deliver
            self._to_deliver = None
        deadline = epoch_ms() + int(self.config.timeout_s * 1000)
        nxt = NextInvocation(**{**pending.nxt.__dict__, "deadline_ms": deadline})
        pending.started_at = time.time()
        pending.t0 = time.perf_counter()
        pending.delivered.set()
        return nxt

    def _current(self, request_id: str) -> _Pending | None:
        with self._cv:
            p = self._pending
        return p if p is not None and p.nxt.request_id == request_id else None

    def invocation_response(self, request_id: str, body: bytes, content_type: str) -> int:
        p = self._current(request_id)
        if p is None:
            return 400
        self.drain_logs()
        if len(body) > MAX_RESPONSE_BYTES:
            # Accepted all the same: runtime clients exit on any other answer, and Lambda keeps the environment.
            p.finish(Outcome("too_large", body=b"", error_type="Function.ResponseSizeTooLarge"))
            return 202
        p.finish(Outcome("response", body=body, content_type=content_type))
        return 202

    def invocation_error(self, request_id: str, body: bytes, error_type: str | None) -> int:
        p = self._current(request_id)
        if p is None:
            return 400
        self.drain_logs()
        p.finish(Outcome("error", body=body, error_type=error_type))
        return 202

    def restore_error(self, body: bytes, error_type: str | None) -> int:
        return self.init_error(body, error_type or "Runtime.AfterRestoreError")

    def init_error(self, body: bytes, error_type: str | None) -> int:
        self._observe_peak()
        self.drain_logs()
        self.init_failure = Outcome("init_error", body=body, error_type=error_type)
        self._init_done.set()
        return 202

    # -- logs --------------------------------------------------------------------------------
    def _read_logs(self) -> None:
        try:
            fd = self.proc.stdout.fileno()
        except (AttributeError, ValueError):  # torn down (a failed INIT) before this thread first ran
            return
        while True:
            try:
                ready, _, _ = select.select([fd], [], [], 1.0)
            except (OSError, ValueError):
                return
            if ready and not self.drain_logs():
                return

    def drain_logs(self) -> bool:
        """Move whatever the worker has written into complete lines; False at end of file.

        Called from the reader thread and synchronously when a response arrives: the worker
        writes its output before it posts the response, so draining then keeps every line
        inside its own invocation.
        """
        with self._log_lock:
            stdout = self.proc.stdout if self.proc else None
            if stdout is None or stdout.closed:
                return False
            chunks = []
            eof = False
            while True:
                try:
                    chunk = os.read(stdout.fileno(), 65536)
                except BlockingIOError:
                    break
                except OSError:
                    eof = True
                    break
                if not chunk:
                    eof = True
                    break
                chunks.append(chunk)
            if chunks:
                # awslambdaric ends each record of a multi-line error with \r; CloudWatch shows them as one event.
                self._lines.extend(self._splitter.feed(b"".join(chunks), epoch_ms()))
            if eof:
                self._lines.extend(self._splitter.flush(epoch_ms()))
            return not eof

    def take_logs(self) -> list[tuple[int, str]]:
        """The lines written since the last call (a partial last line is included)."""
        self.drain_logs()
        with self._log_lock:
            self._lines.extend(self._splitter.flush(epoch_ms()))
            lines, self._lines = self._lines, []
        return lines
