"""Asynchronous invocation (Lambda's `Event` type): per-function queues, retries and destinations.

`AsyncInvoker` owns, for a `LocalRuntime`: each function's event queue and the worker threads
that drain it, the retry timer (an event that failed waits `retry_delays` before its next
attempt; a throttled one backs off and stays queued), and what happens at the end: the
`on_success` destination, or a dead letter (`dead_letters`, the `on_failure` destination, the
runtime's `on_async_failure` hook). Every event ends succeeded or dead-lettered, including when
its function is removed or the runtime closes. Running one attempt is the scheduler's job:
`AsyncInvoker` calls back into it, under the runtime's lock protocol (`lock` is its condition).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lambdalab._util.timefmt import iso_millis
from lambdalab.runtime.errors import InvalidParameterValueException, TooManyRequestsException
from lambdalab.runtime.records import Invocation

if TYPE_CHECKING:
    from lambdalab.runtime.config import FunctionConfig

log = logging.getLogger(__name__)
MAX_ASYNC_PAYLOAD = 1024 * 1024
_THROTTLE_BACKOFF_S = (0.05, 0.1, 0.2, 0.5, 1.0)
_WORKER_LINGER_S = 2.0  # an idle queue worker waits this long for more events before it ends


@dataclass
class EventInvokeConfig:
    """How asynchronous invocations of one function are retried and where failures go."""

    maximum_retry_attempts: int = 2
    maximum_event_age_s: float = 21600
    on_failure: Callable[[dict], None] | None = None
    on_success: Callable[[dict], None] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.maximum_retry_attempts <= 2:
            raise InvalidParameterValueException("MaximumRetryAttempts must be 0, 1 or 2")
        if not 60 <= self.maximum_event_age_s <= 21600:
            raise InvalidParameterValueException("MaximumEventAgeInSeconds must be 60-21600")


@dataclass
class AsyncEvent:
    """One event in a function's asynchronous queue; it ends succeeded or dead-lettered."""

    id: str  # the request id of every attempt: Lambda's retries keep it
    function_name: str
    event: Any
    payload: bytes
    trace_header: str | None
    enqueued_at: float = field(default_factory=time.time)
    state: str = "queued"  # queued, running, retrying, succeeded, dead-lettered
    invocations: list[Invocation] = field(default_factory=list)
    failure: dict | None = None
    throttles: int = 0
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def attempts(self) -> int:
        return len(self.invocations)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the event has succeeded or been dead-lettered."""
        return self._done.wait(timeout)


class FunctionQueue:
    """One deployed function's asynchronous side; the runtime's per-function record extends it.

    Guarded by the runtime's lock. The object lives as long as the function (a re-deploy only
    changes its `config`), so identity tells a removed or re-created function from the one an
    event was queued for.
    """

    def __init__(self, config: FunctionConfig):
        self.config = config
        self.event_config = EventInvokeConfig()
        self.queue: deque[AsyncEvent] = deque()
        self.async_workers = 0
        self.async_inflight = 0  # popped from the queue, not yet succeeded, delayed or dead-lettered
        self.async_events: list[AsyncEvent] = []


def _call_destination(callback: Callable[[dict], None], record: dict) -> None:
    """Hand a record to a destination; a broken destination is logged, never fatal to the queue."""
    try:
        callback(record)
    except Exception:
        log.exception("destination %r failed for request %s; the record stays in LocalRuntime.dead_letters "
                      "or the event's own state", callback, record.get("requestContext", {}).get("requestId"))


def destination_record(config: FunctionConfig, item: AsyncEvent, condition: str) -> dict:
    """The invocation record Lambda sends to a destination, for the event's last attempt."""
    last = item.invocations[-1] if item.invocations else None
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": iso_millis(),
        "requestContext": {
            "requestId": last.request_id if last else item.id,
            "functionArn": config.arn + ":$LATEST",
            "condition": condition,
            "approximateInvokeCount": item.attempts,
        },
        "requestPayload": item.event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
    }
    if last is not None:
        if last.function_error:
            record["responseContext"]["functionError"] = last.function_error
            record["responsePayload"] = last.error
        else:
            result = last.result
            # A response that is not JSON goes to the destination as text, never breaking the record.
            record["responsePayload"] = result.decode("utf-8", "replace") if isinstance(result, bytes) else result
    return record


# What the invoker needs from the scheduler: run one attempt (`attempt`, may raise
# TooManyRequestsException), whether a queue's function is still deployed (`deployed`, called
# with the lock held), and how many events of it may run at once (`concurrency`, lock held).
Attempt = Callable[[FunctionQueue, AsyncEvent], Invocation]


class AsyncInvoker:
    """The asynchronous queues of one runtime; see the module docstring."""

    def __init__(self, lock: threading.Condition, closed: threading.Event, *, attempt: Attempt,
                 deployed: Callable[[FunctionQueue], bool], concurrency: Callable[[FunctionQueue], int],
                 retry_delays: tuple[float, float],
                 on_async_failure: Callable[[FunctionConfig, dict], None] | None = None):
        self._lock = lock
        self._closed = closed
        self._attempt_once = attempt
        self._deployed = deployed
        self._concurrency = concurrency
        self.retry_delays = tuple(retry_delays)
        self.on_async_failure = on_async_failure
        self.dead_letters: list[dict] = []
        self._delayed: list[tuple[float, int, FunctionQueue, AsyncEvent]] = []
        self._seq = itertools.count()

    # -- queueing ----------------------------------------------------------------------------
    def submit(self, fq: FunctionQueue, event: Any, payload: bytes, trace_header: str | None) -> AsyncEvent:
        """Queue an event; returns at once."""
        item = AsyncEvent(id=str(uuid.uuid4()), function_name=fq.config.name, event=event, payload=payload,
                          trace_header=trace_header)
        with self._lock:
            fq.async_events.append(item)
            fq.queue.append(item)
            self._spawn_worker(fq)
            self._lock.notify_all()
        return item

    def _spawn_worker(self, fq: FunctionQueue) -> None:
        if fq.async_workers < max(1, self._concurrency(fq)) and fq.async_workers < len(fq.queue):
            fq.async_workers += 1
            threading.Thread(target=self._worker, args=(fq,), daemon=True, name=f"async-{fq.config.name}").start()

    def _worker(self, fq: FunctionQueue) -> None:
        try:
            while True:
                with self._lock:
                    if not fq.queue and not self._lock.wait_for(lambda: fq.queue or self._closed.is_set(),
                                                                timeout=_WORKER_LINGER_S):
                        return
                    if self._closed.is_set() or not self._deployed(fq):
                        return  # close() and remove() dead-letter what is still queued
                    item = fq.queue.popleft()
                    item.state = "running"
                    fq.async_inflight += 1
                try:
                    self._attempt(fq, item)
                finally:
                    with self._lock:
                        fq.async_inflight -= 1
                        self._lock.notify_all()
        finally:
            with self._lock:
                fq.async_workers -= 1

    def _attempt(self, fq: FunctionQueue, item: AsyncEvent) -> None:
        cfg = fq.event_config
        if time.time() - item.enqueued_at > cfg.maximum_event_age_s:
            self.dead_letter(fq, item, "EventAgeExceeded")
            return
        try:
            inv = self._attempt_once(fq, item)
        except TooManyRequestsException:
            # Lambda keeps throttled events queued and retries them (for up to six hours).
            item.throttles += 1
            item.state = "queued"
            self._delay(fq, item, _THROTTLE_BACKOFF_S[min(item.throttles, len(_THROTTLE_BACKOFF_S)) - 1])
            return
        except Exception as e:  # the function vanished or the runtime closed: never lose the event
            if self._closed.is_set():
                condition = "RuntimeClosed"
            elif not self._deployed(fq):
                condition = "FunctionDeleted"
            else:
                condition = f"Error: {e}"
            self.dead_letter(fq, item, condition)
            return
        item.invocations.append(inv)
        if inv.ok:
            item.state = "succeeded"
            try:
                if cfg.on_success:
                    _call_destination(cfg.on_success, destination_record(fq.config, item, "Success"))
            finally:
                item._done.set()
        elif item.attempts <= cfg.maximum_retry_attempts:
            item.state = "retrying"
            self._delay(fq, item, self.retry_delays[item.attempts - 1])
        else:
            self.dead_letter(fq, item, "RetriesExhausted")

    # -- retry timer -------------------------------------------------------------------------
    def _delay(self, fq: FunctionQueue, item: AsyncEvent, seconds: float) -> None:
        with self._lock:
            closed = self._closed.is_set()
            if not closed and self._deployed(fq):
                heapq.heappush(self._delayed, (time.monotonic() + seconds, next(self._seq), fq, item))
                return
        # Nothing will retry it any more: it must still end somewhere.
        self.dead_letter(fq, item, "RuntimeClosed" if closed else "FunctionDeleted")

    def requeue_due(self, now: float) -> None:
        """Put the events whose retry time has come back in their queues (the runtime's monitor calls this)."""
        with self._lock:
            due = []
            while self._delayed and self._delayed[0][0] <= now:
                due.append(heapq.heappop(self._delayed))
            orphans = []
            for _, _, fq, item in due:
                if self._deployed(fq):
                    fq.queue.append(item)
                    self._spawn_worker(fq)
                else:
                    orphans.append((fq, item))
            if due:
                self._lock.notify_all()
        for fq, item in orphans:
            self.dead_letter(fq, item, "FunctionDeleted")

    # -- ends --------------------------------------------------------------------------------
    def dead_letter(self, fq: FunctionQueue, item: AsyncEvent, condition: str) -> None:
        record = destination_record(fq.config, item, condition)
        item.failure = record
        item.state = "dead-lettered"
        with self._lock:
            self.dead_letters.append(record)
        try:
            if fq.event_config.on_failure:
                _call_destination(fq.event_config.on_failure, record)
            if self.on_async_failure:
                _call_destination(lambda r: self.on_async_failure(fq.config, r), record)
        finally:
            item._done.set()

    def dead_letter_now(self, fq: FunctionQueue, event: Any, payload: bytes, condition: str) -> dict:
        """An event that goes straight to the on-failure destination, never run."""
        item = AsyncEvent(id=str(uuid.uuid4()), function_name=fq.config.name, event=event,
                          payload=payload, trace_header=None)
        with self._lock:
            fq.async_events.append(item)
        self.dead_letter(fq, item, condition)
        return item.failure

    def take_pending(self, queues: Iterable[FunctionQueue]) -> list[tuple[FunctionQueue, AsyncEvent]]:
        """Empty `queues` and take their events off the retry timer; the caller holds the lock.

        The caller dead-letters what this returns once it has released the lock.
        """
        queues = list(queues)
        pending = [(fq, item) for fq in queues for item in fq.queue]
        for fq in queues:
            fq.queue.clear()
        pending += [(fq, item) for _, _, fq, item in self._delayed if fq in queues]
        self._delayed = [d for d in self._delayed if d[2] not in queues]
        heapq.heapify(self._delayed)
        return pending

    def idle(self, queues: list[FunctionQueue]) -> bool:
        """No event queued, running or waiting for a retry (lock held)."""
        return not self._delayed and all(not fq.queue and not fq.async_inflight for fq in queues)
