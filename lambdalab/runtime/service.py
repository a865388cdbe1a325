"""The local Lambda service: functions, their pools of execution environments, and invocations.

`LocalRuntime` decides which environment serves each request (warm reuse, scale-out, cold
start, throttling at the concurrency limit, provisioned environments), runs synchronous
invocations, turns what the worker did into an `Invocation` record with Lambda's
START/END/REPORT lines, reaps idle environments, and kills workers that pass their memory size.
Asynchronous invocations (queues, retries, destinations) are `lambdalab.runtime.asynchronous`'s;
the runtime hands it one attempt at a time. Closing it leaves no worker behind.
"""

from __future__ import annotations

import atexit
import json
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from typing import Any

from lambdalab._util.owned import owned_tempdir, sweep_tempdirs
from lambdalab._util.spawn import Spawner, guarded
from lambdalab._util.xray import new_trace_header
from lambdalab.runtime.asynchronous import MAX_ASYNC_PAYLOAD, AsyncEvent, AsyncInvoker, EventInvokeConfig, FunctionQueue
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.cpu import CpuController
from lambdalab.runtime.environment import ExecutionEnvironment, lambda_environment
from lambdalab.runtime.errors import (
    InvalidParameterValueException,
    RequestTooLargeException,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from lambdalab.runtime.imports import WORKER_FLAGS
from lambdalab.runtime.records import Invocation, billed_ms, fill_result, log_lines
from lambdalab.runtime.runtime_api import NextInvocation
from lambdalab.runtime.snapstart import SnapshotTemplate

MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
DEFAULT_ACCOUNT_CONCURRENCY = 10
_MONITOR_TICK_S = 0.02

LogSink = Callable[[str, str, list[tuple[int, str]]], None]


def _has_awslambdaric() -> bool:
    import importlib.util
    return importlib.util.find_spec("awslambdaric") is not None


def _encode(event: Any) -> bytes:
    if isinstance(event, bytes):
        return event
    if isinstance(event, str):
        return event.encode()
    return json.dumps(event).encode()


class _Function(FunctionQueue):
    """A deployed function: its environments, and (from `FunctionQueue`) its asynchronous queue.

    Guarded by the runtime's lock.
    """

    def __init__(self, config: FunctionConfig):
        super().__init__(config)
        self.envs: set[ExecutionEnvironment] = set()
        self.idle: list[ExecutionEnvironment] = []  # most recently used last
        self.busy = 0
        self.starting = 0
        self.resetting = 0  # environments restarting their worker after a crash or timeout
        self.records: list[Invocation] = []
        self.template: SnapshotTemplate | None = None  # for snap_start functions
        self.template_lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self.busy + self.starting + self.resetting

    def take_idle(self) -> ExecutionEnvironment | None:
        # Provisioned environments first (they are what the customer pays for), then the
        # most recently used on-demand one, so older ones age out and get reaped.
        for i in range(len(self.idle) - 1, -1, -1):
            if self.idle[i].init_type == "provisioned-concurrency":
                return self.idle.pop(i)
        return self.idle.pop() if self.idle else None


_CONCURRENCY_FIELDS = frozenset({"reserved_concurrency", "provisioned_concurrency"})


def _same_environment(a: FunctionConfig, b: FunctionConfig) -> bool:
    """Whether an environment made for `a` may serve `b`: concurrency settings don't change its code or limits.

    Compared field by field: building configs (which validates them) on every release costs ~0.2 ms."""
    return a is b or all(getattr(a, f.name) == getattr(b, f.name)
                         for f in fields(FunctionConfig) if f.name not in _CONCURRENCY_FIELDS)


def _notify(hook: Callable[..., None] | None, *args: Any) -> None:
    if hook is not None:
        try:
            hook(*args)
        except Exception:
            pass  # an observer must not break invocations


_live_runtimes: "weakref.WeakSet[LocalRuntime]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for rt in list(_live_runtimes):
        rt.close()


class LocalRuntime:
    """Runs Lambda functions locally in real execution environments.

    Use as a context manager; `close()` kills every worker.
    """

    def __init__(self, *, account_concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY,
                 idle_timeout_s: float = 600.0, cpu_limit: bool | str = True,
                 async_retry_delays: tuple[float, float] = (60.0, 120.0), client: str = "auto",
                 extra_env: dict[str, str] | None = None,
                 credentials: Callable[[FunctionConfig], dict[str, str]] | None = None,
                 log_sink: LogSink | None = None,
                 on_async_failure: Callable[[FunctionConfig, dict], None] | None = None,
                 free_tier: bool = False, sandbox: bool = True):
        if client not in ("auto", "awslambdaric", "bootstrap"):
            raise InvalidParameterValueException(
                f"client must be 'auto', 'awslambdaric' or 'bootstrap', not {client!r}")
        if client == "awslambdaric" and not _has_awslambdaric():
            raise InvalidParameterValueException(
                "client='awslambdaric' but awslambdaric is not installed (it has Linux wheels only)")
        if account_concurrency < 1:
            raise InvalidParameterValueException("account_concurrency must be >= 1")
        if len(async_retry_delays) != 2 or min(async_retry_delays) < 0:
            raise InvalidParameterValueException("async_retry_delays must be two non-negative numbers of seconds")
        from lambdalab.runtime.metering import Meter

        sweep_tempdirs()  # what a runtime killed with SIGKILL left behind
        self.client = ("awslambdaric" if _has_awslambdaric() else "bootstrap") if client == "auto" else client
        self.account_concurrency = account_concurrency
        self.idle_timeout_s = idle_timeout_s
        self.extra_env = dict(extra_env or {})
        self.credentials = credentials
        self.log_sink = log_sink
        # What Lambda's metrics see: each finished invocation, and each request refused for
        # concurrency (function name, epoch seconds). Called in the invoking thread; errors are ignored.
        self.on_invocation: Callable[[Invocation], None] | None = None
        self.on_throttle: Callable[[str, float], None] | None = None
        self.meter = Meter(free_tier=free_tier)
        self.cpu = CpuController(cpu_limit)
        self.sandbox = sandbox  # False: no namespaces, to measure what the sandbox adds to a cold start
        self._functions: dict[str, _Function] = {}
        self._lock = threading.Condition()
        self._closed = threading.Event()
        self._spawner = Spawner()
        self._async = AsyncInvoker(self._lock, self._closed, attempt=self._attempt, deployed=self._deployed,
                                   concurrency=self._concurrency, retry_delays=async_retry_delays,
                                   on_async_failure=on_async_failure)
        self._janitor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lambdalab-janitor")
        self._logs: deque[tuple[str, str, list[tuple[int, str]]]] = deque()
        self._logs_cv = threading.Condition()
        self._monitor = threading.Thread(target=self._monitor_loop, name="lambdalab-monitor", daemon=True)
        self._monitor.start()
        self._shipper = threading.Thread(target=self._ship_logs, name="lambdalab-logs", daemon=True)
        self._shipper.start()
        _live_runtimes.add(self)

    # Settings of the asynchronous side, kept as the runtime's own attributes.
    @property
    def async_retry_delays(self) -> tuple[float, ...]:
        return self._async.retry_delays

    @async_retry_delays.setter
    def async_retry_delays(self, delays: tuple[float, float]) -> None:
        self._async.retry_delays = tuple(delays)

    @property
    def on_async_failure(self) -> Callable[[FunctionConfig, dict], None] | None:
        return self._async.on_async_failure

    @on_async_failure.setter
    def on_async_failure(self, hook: Callable[[FunctionConfig, dict], None] | None) -> None:
        self._async.on_async_failure = hook

    @property
    def dead_letters(self) -> list[dict]:
        """Every destination record of an event that failed for good, oldest first."""
        return self._async.dead_letters

    def __enter__(self) -> "LocalRuntime":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- functions -------------------------------------------------------------------------
    def deploy(self, config: FunctionConfig) -> FunctionConfig:
        """Create or replace a function. Existing environments are retired (new code = cold)."""
        self._check_open()
        with self._lock:
            old = self._functions.get(config.name)
            if old is None:
                self._functions[config.name] = _Function(config)
            else:
                old.config = config
                retired = self._retire(old, lambda env: True)
        if old is not None:
            self._destroy_later(retired)
            self._drop_template(old)
        self.set_provisioned_concurrency(config.name, config.provisioned_concurrency)
        return config

    def update(self, name: str, **changes: Any) -> FunctionConfig:
        """Change a function's configuration (memory, timeout, environment...); like a re-deploy."""
        return self.deploy(replace(self.get(name), **changes))

    def get(self, name: str) -> FunctionConfig:
        return self._fn(name).config

    def functions(self) -> list[str]:
        with self._lock:
            return sorted(self._functions)

    def remove(self, name: str) -> None:
        """Delete a function: its environments stop; its queued async events are dead-lettered."""
        with self._lock:
            fn = self._functions.pop(name, None)
            if fn is None:
                raise ResourceNotFoundException(f"Function not found: {name}")
            retired = self._retire(fn, lambda env: True)
            orphans = self._async.take_pending([fn])
            self._lock.notify_all()
        self._destroy_later(retired)
        self._drop_template(fn)
        for _, item in orphans:
            self._async.dead_letter(fn, item, "FunctionDeleted")

    @staticmethod
    def _drop_template(fn: _Function) -> None:
        with fn.template_lock:
            template, fn.template = fn.template, None
        if template is not None:
            template.close()  # its forked environments die with it (PR_SET_PDEATHSIG)

    def set_reserved_concurrency(self, name: str, reserved: int | None) -> None:
        """Reserve (and cap) a function's concurrency; None removes the reservation. Keeps warm environments."""
        self._set_config(name, reserved_concurrency=reserved)

    def set_event_invoke_config(self, name: str, **settings: Any) -> EventInvokeConfig:
        fn = self._fn(name)
        fn.event_config = replace(fn.event_config, **settings)
        return fn.event_config

    def event_invoke_config(self, name: str) -> EventInvokeConfig:
        return self._fn(name).event_config

    def set_provisioned_concurrency(self, name: str, count: int) -> None:
        """Keep `count` environments initialised ahead; blocks until they are ready."""
        if count < 0:
            raise InvalidParameterValueException("provisioned concurrency must be >= 0")
        fn = self._fn(name)
        config = self._set_config(name, provisioned_concurrency=count)
        with self._lock:
            # Environments of an older configuration retire when released; they don't count.
            have = [e for e in fn.envs if e.init_type == "provisioned-concurrency"
                    and _same_environment(e.config, config)]
            surplus = [e for e in fn.idle if e in have][: max(0, len(have) - count)]
            retired = self._retire(fn, lambda env: env in surplus)
            missing = max(0, count - len(have))
        self._destroy_later(retired)
        if not missing:
            return
        futures = [self._janitor.submit(self._start_env, config, "provisioned-concurrency") for _ in range(missing)]
        started, errors = [], []
        for future in futures:  # wait for every start, so none is orphaned when one fails
            try:
                started.append(future.result())
            except Exception as e:
                errors.append(e)
        with self._lock:
            for env in started:
                if (env.init_failure is None and self._functions.get(name) is fn
                        and _same_environment(fn.config, config) and not self._closed.is_set()):
                    env.freeze()
                    fn.envs.add(env)
                    fn.idle.append(env)
                else:
                    self._destroy_later([env])
            self._lock.notify_all()
        if errors:
            raise errors[0]

    def _set_config(self, name: str, **changes: Any) -> FunctionConfig:
        with self._lock:
            fn = self._fn(name)
            fn.config = replace(fn.config, **changes)
            return fn.config

    def _deployed(self, fn: FunctionQueue) -> bool:
        return self._functions.get(fn.config.name) is fn

    def _concurrency(self, fn: FunctionQueue) -> int:
        reserved = fn.config.reserved_concurrency
        return reserved if reserved is not None else self.account_concurrency

    def _fn(self, name: str) -> _Function:
        fn = self._functions.get(name)
        if fn is None:
            raise ResourceNotFoundException(f"Function not found: {name}")
        return fn

    # -- inspection ------------------------------------------------------------------------
    def records(self, name: str | None = None) -> list[Invocation]:
        with self._lock:
            if name is not None:
                return list(self._fn(name).records)
            return [r for fn in self._functions.values() for r in fn.records]

    def environments(self, name: str) -> list[ExecutionEnvironment]:
        with self._lock:
            return sorted(self._fn(name).envs, key=lambda e: e.created_at)

    def async_events(self, name: str) -> list[AsyncEvent]:
        with self._lock:
            return list(self._fn(name).async_events)

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [e.proc.pid for fn in self._functions.values() for e in fn.envs if e.proc]

    # -- synchronous invocation ------------------------------------------------------------
    def invoke(self, name: str, event: Any = None, *, invocation_type: str = "RequestResponse",
               trace_header: str | None = None, client_context: str | None = None) -> Invocation | AsyncEvent:
        """Invoke a function; `RequestResponse` returns the `Invocation`, `Event` an `AsyncEvent`."""
        if invocation_type == "Event":
            return self.invoke_async(name, event, trace_header=trace_header)
        if invocation_type != "RequestResponse":
            raise InvalidParameterValueException(
                f"invocation_type must be 'RequestResponse' or 'Event', not {invocation_type!r}")
        self._check_open()
        payload = _encode({} if event is None else event)
        if len(payload) > MAX_SYNC_PAYLOAD:
            raise RequestTooLargeException(len(payload), MAX_SYNC_PAYLOAD)
        return self._invoke(self._fn(name), event, payload, "RequestResponse", trace_header, client_context)

    def _invoke(self, fn: _Function, event: Any, payload: bytes, invocation_type: str,
                trace_header: str | None, client_context: str | None, attempt: int = 1,
                request_id: str | None = None) -> Invocation:
        try:
            env = self._acquire(fn)
        except TooManyRequestsException:
            _notify(self.on_throttle, fn.config.name, time.time())
            raise
        inv = None
        try:
            inv = self._run(fn, env, event, payload, invocation_type, trace_header, client_context, attempt,
                            request_id or str(uuid.uuid4()))
            return inv
        finally:
            self._release(fn, env, inv)

    def _acquire(self, fn: _Function) -> ExecutionEnvironment:
        with self._lock:
            reserved = fn.config.reserved_concurrency
            if reserved is not None and fn.in_use >= reserved:
                raise TooManyRequestsException(fn.config.name, reserved)
            env = self._take_alive(fn)
            while env is None and fn.resetting and not self._closed.is_set():
                # The next request goes to the environment being reset, as on Lambda (after its re-init).
                self._lock.wait(timeout=1.0)
                env = self._take_alive(fn)
            if env is not None:
                fn.busy += 1
                return env
            self._check_capacity(fn)
            fn.starting += 1
            config = fn.config
        try:
            env = self._start_env(config, "on-demand")
        except BaseException:
            with self._lock:
                fn.starting -= 1
                self._lock.notify_all()
            raise
        with self._lock:
            fn.starting -= 1
            # close() sets the flag before it takes the lock to collect the environments it kills:
            # one that finished its INIT after that is this thread's to destroy.
            closed = self._closed.is_set()
            if not closed:
                fn.busy += 1
                fn.envs.add(env)
            self._lock.notify_all()
        if closed:
            env.destroy()
            self._check_open()
        return env

    def _take_alive(self, fn: _Function) -> ExecutionEnvironment | None:
        env = fn.take_idle()
        while env is not None and not env.alive:  # died while frozen: forget it
            fn.envs.discard(env)
            self._destroy_later([env])
            env = fn.take_idle()
        return env

    def _check_capacity(self, fn: _Function) -> None:
        reserved = fn.config.reserved_concurrency
        if reserved is not None:
            if fn.in_use >= reserved:
                raise TooManyRequestsException(fn.config.name, reserved)
            return
        pool = self.account_concurrency - sum(
            f.config.reserved_concurrency or 0 for f in self._functions.values())
        used = sum(f.in_use for f in self._functions.values() if f.config.reserved_concurrency is None)
        if used >= pool:
            raise TooManyRequestsException(fn.config.name, pool, "ConcurrentInvocationLimitExceeded")

    def _start_env(self, config: FunctionConfig, init_type: str) -> ExecutionEnvironment:
        self._check_open()
        extra = dict(self.extra_env)
        if self.credentials is not None:
            extra.update(self.credentials(config))
        template = None
        if config.snap_start:
            template = self._template(config, extra)
            init_type = "snap-start"
        def environment() -> ExecutionEnvironment:
            return ExecutionEnvironment(config, client=self.client, spawner=self._spawner,
                                        cpu=self.cpu.limit(uuid.uuid4().hex[:12], config.memory_mb),
                                        extra_env=extra, init_type=init_type, template=template,
                                        sandbox=self.sandbox)

        env = environment()
        env.start()
        if template is None and env.init_failure is not None and env.init_failure.error_type == "Runtime.InitTimeout":
            # Lambda retries an INIT that passed its 10 s at the first invocation, this time
            # under the function's timeout (the execution environment lifecycle).
            env = environment()
            env.start(init_limit_s=max(config.timeout_s, 0.001))
        return env

    def _template(self, config: FunctionConfig, extra: dict[str, str]) -> SnapshotTemplate:
        """The function's initialised template, made on first need (like publishing a SnapStart version)."""
        fn = self._fn(config.name)
        with fn.template_lock:
            if fn.template is None or fn.template.proc.poll() is not None:
                tmp = owned_tempdir(f"lambdalab-{config.name}-template-")
                env = lambda_environment(config, runtime_api="127.0.0.1:1", tmpdir=tmp, log_stream="template",
                                         init_type="snap-start", extra=extra)
                prefix = guarded([sys.executable, *WORKER_FLAGS])  # the template runs `-m ric.snapshot`
                fn.template = SnapshotTemplate(self._spawner.spawn, prefix, config.handler, env, str(config.code_dir),
                                               workdir=tmp)
            return fn.template

    def template_init_ms(self, name: str) -> float | None:
        """How long the snapshot template's INIT took (None until a snap_start function first scales)."""
        fn = self._fn(name)
        return fn.template.init_ms if fn.template else None

    def _release(self, fn: _Function, env: ExecutionEnvironment, inv: Invocation | None) -> None:
        crashed = inv is not None and (inv.status == "timeout" or inv.error_type == "Runtime.ExitError")
        reusable = inv is not None and env.alive and env.init_failure is None and not crashed
        with self._lock:
            fn.busy -= 1
            current = self._functions.get(fn.config.name) is fn and _same_environment(env.config, fn.config)
            if reusable and current and not self._closed.is_set():
                env.freeze()
                env.state = "idle"
                fn.idle.append(env)
            elif crashed and current and env.init_failure is None and not self._closed.is_set():
                env.state = "resetting"  # Lambda resets the environment, keeping /tmp, rather than replacing it
                fn.resetting += 1
                self._janitor.submit(self._reset, fn, env)
            else:
                fn.envs.discard(env)
                self._destroy_later([env])
            self._lock.notify_all()

    def _reset(self, fn: _Function, env: ExecutionEnvironment) -> None:
        """Restart a crashed environment's worker in its sandbox, then offer it again."""
        try:
            ok = not self._closed.is_set() and env.reset()
        except Exception:
            ok = False
        with self._lock:
            fn.resetting -= 1
            if ok and self._functions.get(fn.config.name) is fn and not self._closed.is_set():
                env.freeze()
                env.state = "idle"
                fn.idle.append(env)
            else:
                fn.envs.discard(env)
                self._destroy_later([env])
            self._lock.notify_all()

    def _run(self, fn: _Function, env: ExecutionEnvironment, event: Any, payload: bytes,
             invocation_type: str, trace_header: str | None, client_context: str | None,
             attempt: int, request_id: str) -> Invocation:
        config = env.config
        cold = env.invocations == 0 and env.init_type != "provisioned-concurrency"
        init_lines = env.take_logs() if env.invocations == 0 else []
        trace = trace_header or new_trace_header()
        failed_init_ms = None
        if env.init_failure is not None:
            outcome = env.init_failure
            # Lambda runs a failed INIT again in the invoke phase: the REPORT's Duration is that
            # INIT, here the one measured (not run twice), and INIT_REPORT reports the first.
            failed_init_ms = env.init_ms or 0.0
            outcome.duration_ms = failed_init_ms
            outcome.ended_at = time.time()
            outcome.started_at = outcome.ended_at - failed_init_ms / 1000
        else:
            nxt = NextInvocation(request_id=request_id, body=payload, deadline_ms=0,
                                 function_arn=config.arn, trace_id=trace,
                                 client_context=client_context)
            outcome = env.invoke(nxt, config.timeout_s)
        peak = env.peak_memory_mb()
        lines = env.take_logs()
        inv = Invocation(request_id=request_id, function_name=config.name, event=event,
                         invocation_type=invocation_type, memory_mb=config.memory_mb,
                         environment_id=env.id, cold=cold, started_at=outcome.started_at,
                         ended_at=outcome.ended_at, architecture=config.architecture,
                         attempt=attempt, trace_id=trace,
                         provisioned=env.init_type == "provisioned-concurrency")
        if cold and env.init_ms is not None and failed_init_ms is None:
            if env.template is not None:
                inv.restore_ms = round(env.init_ms, 2)
            else:
                inv.init_ms = round(env.init_ms, 2)
        suppressed, env.suppressed_init_ms = env.suppressed_init_ms, 0.0  # a re-init after a crash (reset)
        inv.duration_ms = round(outcome.duration_ms + suppressed, 2)
        inv.billed_ms = billed_ms(inv.duration_ms, inv.init_ms)
        inv.max_memory_used_mb = peak
        fill_result(inv, outcome, config.timeout_s)
        stamped = log_lines(inv, init_lines, lines, outcome, config.timeout_s, failed_init_ms)
        inv.log_lines = [text for _, text in stamped]
        with self._lock:
            fn.records.append(inv)
        self.meter.add(inv)
        _notify(self.on_invocation, inv)
        if self.log_sink is not None:
            with self._logs_cv:
                self._logs.append((config.name, env.log_stream, stamped))
                self._logs_cv.notify()
        return inv

    # -- asynchronous invocation (lambdalab.runtime.asynchronous) ------------------------
    def invoke_async(self, name: str, event: Any = None, *, trace_header: str | None = None) -> AsyncEvent:
        """Queue an event (Lambda's `Event` invocation type); returns at once."""
        self._check_open()
        payload = _encode({} if event is None else event)
        if len(payload) > MAX_ASYNC_PAYLOAD:
            raise RequestTooLargeException(len(payload), MAX_ASYNC_PAYLOAD)
        return self._async.submit(self._fn(name), event, payload, trace_header)

    def _attempt(self, fn: _Function, item: AsyncEvent) -> Invocation:
        return self._invoke(fn, item.event, item.payload, "Event", item.trace_header, None,
                            attempt=item.attempts + 1, request_id=item.id)

    def dead_letter(self, name: str, event: Any, condition: str) -> dict:
        """Send an event straight to a function's on-failure destination (used by loop detection)."""
        return self._async.dead_letter_now(self._fn(name), event, _encode(event), condition)

    # -- background work -------------------------------------------------------------------
    def _monitor_loop(self) -> None:
        """Memory watchdog for busy environments, reaper for idle ones, and async retry timer."""
        last_reap = 0.0
        while not self._closed.wait(_MONITOR_TICK_S):
            with self._lock:
                fns = list(self._functions.values())
                busy = [(e, f.config.memory_mb) for f in fns for e in f.envs if e.state == "busy"]
            now = time.monotonic()
            self._async.requeue_due(now)
            for env, memory_mb in busy:
                env.watchdog_check(memory_mb)
            if now - last_reap >= 0.25:
                last_reap = now
                self._reap(fns, now)

    def _reap(self, fns: Iterable[_Function], now: float) -> None:
        with self._lock:
            stale: list[ExecutionEnvironment] = []
            for fn in fns:
                stale += self._retire(fn, lambda env, fn=fn: env in fn.idle and (
                    not env.alive or (env.init_type == "on-demand" and now - env.last_used > self.idle_timeout_s)))
        self._destroy_later(stale)

    def _retire(self, fn: _Function, which: Callable[[ExecutionEnvironment], bool]) -> list[ExecutionEnvironment]:
        """Take idle environments matching `which` out of service (busy ones retire on release)."""
        gone = [e for e in fn.idle if which(e)]
        fn.idle = [e for e in fn.idle if e not in gone]
        fn.envs.difference_update(gone)
        return gone

    def _destroy_later(self, envs: Iterable[ExecutionEnvironment]) -> None:
        for env in envs:
            env.kill()  # at once, so no retired worker lingers; the slow part runs in the background
            try:
                self._janitor.submit(env.destroy)
            except RuntimeError:  # janitor already shut down during close()
                env.destroy()

    def _ship_logs(self) -> None:
        while True:
            with self._logs_cv:
                self._logs_cv.wait_for(lambda: self._logs or self._closed.is_set())
                if not self._logs:
                    return
                item = self._logs[0]
            try:
                self.log_sink(*item)
            except Exception:
                pass  # a broken sink must not break invocations; the record keeps the lines
            with self._logs_cv:
                self._logs.popleft()
                self._logs_cv.notify_all()

    def flush_logs(self, timeout: float = 10.0) -> bool:
        """Wait until every log line has been handed to the log sink."""
        with self._logs_cv:
            return self._logs_cv.wait_for(lambda: not self._logs, timeout=timeout)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no invocation is running and no async event is pending."""
        def quiet() -> bool:
            fns = self._functions.values()
            return all(f.in_use == 0 for f in fns) and self._async.idle(fns)
        with self._lock:
            return self._lock.wait_for(quiet, timeout=timeout)

    # -- shutdown --------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed.is_set():
            raise RuntimeError("this LocalRuntime is closed")

    def close(self) -> None:
        """Kill every worker, dead-letter queued async events, and stop background threads."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            envs = [e for fn in self._functions.values() for e in fn.envs]
            pending = self._async.take_pending(self._functions.values())
            for fn in self._functions.values():
                fn.idle.clear()
            self._lock.notify_all()
        for fn, item in pending:
            self._async.dead_letter(fn, item, "RuntimeClosed")
        for env in envs:
            env.kill()
        with self._logs_cv:
            self._logs_cv.notify_all()
        self._shipper.join(timeout=5)
        list(self._janitor.map(lambda e: e.destroy(), envs))
        for fn in self._functions.values():
            self._drop_template(fn)
        self._janitor.shutdown(wait=True)
        self._monitor.join(timeout=2)
        self._spawner.close()
        self.cpu.close()
        _live_runtimes.discard(self)
