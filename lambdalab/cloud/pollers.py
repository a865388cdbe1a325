"""Lambda's event source mappings for the local cloud: pollers for SQS queues and DynamoDB streams.

moto pushes each SQS message and stream record to a mapped function synchronously, alone, inside
the request that caused it, and never redelivers. `EventSourcePollers` plays Lambda's pollers
instead, from a background thread: SQS batches up to the batch size (waiting out the batching
window), at most `MaximumConcurrency` batches in flight per mapping, messages deleted only when the
batch succeeds (or, with `ReportBatchItemFailures`, all but the failed ones); stream batches in
order, each retried with backoff (blocking its shard) until it succeeds or its retries run out.
The batches run through the `LambdaService`.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lambdalab.cloud.lambda_service import LambdaService
from lambdalab.cloud.moto import dynamodb, sqs

_SQS_DEFAULT_CONCURRENCY = 5  # Lambda starts five pollers per SQS mapping
_STREAM_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)


@dataclass
class _MappingState:
    in_flight: int = 0
    waiting_since: float | None = None  # when a partial batch started waiting for its window
    failures: int = 0
    retry_at: float = 0.0


class EventSourcePollers:
    """Polls SQS queues and DynamoDB streams for every enabled event source mapping."""

    def __init__(self, service: LambdaService, interval_s: float = 0.05, workers: int = 8):
        self.service = service
        self.interval_s = interval_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lambdalab-esm")
        self._state: dict[str, _MappingState] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lambdalab-pollers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def reset(self) -> None:
        with self._lock:
            self._state = {k: v for k, v in self._state.items() if v.in_flight}

    def busy(self) -> bool:
        """True while a batch is being handled or an enabled mapping's source has messages ready."""
        with self._lock:
            if any(s.in_flight for s in self._state.values()):
                return True
        return any(self._has_work(b, esm) for b, esm in self._mappings())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            for backend, esm in self._mappings():
                try:
                    self._poll(backend, esm)
                except Exception:  # a mapping whose queue or table vanished: skip it this round
                    continue

    @staticmethod
    def _mappings() -> list[tuple[Any, Any]]:
        from moto.awslambda.models import lambda_backends

        found = []
        for _, _, backend in list(lambda_backends.iter_backends()):
            for esm in list(backend._event_source_mappings.values()):
                if esm.enabled:
                    found.append((backend, esm))
        return found

    def _state_for(self, esm: Any) -> _MappingState:
        with self._lock:
            return self._state.setdefault(esm.uuid, _MappingState())

    def _has_work(self, backend: Any, esm: Any) -> bool:
        try:
            if ":sqs:" in esm.event_source_arn:
                # In-flight, delayed and to-be-redelivered messages are all work still to come.
                queue = sqs.find_queue(backend.account_id, backend.region_name, esm.event_source_arn)
                return bool(queue._messages) if queue else False
            shard, cursor = dynamodb.stream_cursor(backend.account_id, backend.region_name, esm)
            return shard is not None and cursor < len(shard.items)
        except Exception:
            return False

    def _poll(self, backend: Any, esm: Any) -> None:
        if ":sqs:" in esm.event_source_arn:
            self._poll_sqs(backend, esm)
        elif ":dynamodb:" in esm.event_source_arn:
            self._poll_stream(backend, esm)

    # -- SQS --
    def _poll_sqs(self, backend: Any, esm: Any) -> None:
        queue = sqs.find_queue(backend.account_id, backend.region_name, esm.event_source_arn)
        if queue is None:
            return
        state = self._state_for(esm)
        limit = int((esm.scaling_config or {}).get("MaximumConcurrency") or _SQS_DEFAULT_CONCURRENCY)
        if state.in_flight >= limit or time.monotonic() < state.retry_at:
            return
        visible = sum(1 for m in queue.messages if m.visible)
        if not visible:
            state.waiting_since = None
            return
        window = float(esm.max_batch_window or 0)
        if visible < esm.batch_size and window > 0:
            # Lambda waits up to the batching window for a full batch.
            state.waiting_since = state.waiting_since or time.monotonic()
            if time.monotonic() - state.waiting_since < window:
                return
        state.waiting_since = None
        messages = sqs.backend(backend.account_id, backend.region_name).receive_message(
            queue.name, min(esm.batch_size, 10_000), 0, queue.visibility_timeout, message_attribute_names=["All"])
        if not messages:
            return
        with self._lock:
            state.in_flight += 1
        self._pool.submit(self._run_sqs_batch, backend, esm, queue, messages, state)

    def _run_sqs_batch(self, backend: Any, esm: Any, queue: Any, messages: list[Any], state: _MappingState) -> None:
        try:
            event = {"Records": [sqs.lambda_record(m, queue) for m in messages]}
            trace = next((t for t in map(sqs.trace_of, messages) if t), None)
            outcome = self.service.invoke_batch(esm.function_arn, event, trace)
            if not outcome.invoked:
                state.retry_at = time.monotonic() + 0.2  # throttled: back off, the messages return
                return
            if not outcome.ok:
                return  # the whole batch becomes visible again after the visibility timeout
            done = _succeeded(messages, outcome.result,
                              "ReportBatchItemFailures" in (esm.function_response_types or []))
            moto_sqs = sqs.backend(backend.account_id, backend.region_name)
            for message in done:
                try:
                    moto_sqs.delete_message(queue.name, message.receipt_handle)
                except Exception:
                    pass  # already gone (deleted by the handler itself, or the queue was purged)
        finally:
            with self._lock:
                state.in_flight -= 1

    # -- DynamoDB Streams --
    def _poll_stream(self, backend: Any, esm: Any) -> None:
        state = self._state_for(esm)
        if state.in_flight or time.monotonic() < state.retry_at:
            return
        shard, cursor = dynamodb.stream_cursor(backend.account_id, backend.region_name, esm)
        if shard is None or cursor >= len(shard.items):
            return
        with self._lock:
            state.in_flight += 1
        self._pool.submit(self._run_stream_batch, backend, esm, shard, cursor, state)

    def _run_stream_batch(self, backend: Any, esm: Any, shard: Any, cursor: int, state: _MappingState) -> None:
        try:
            items = shard.items[cursor: cursor + esm.batch_size]
            event = {"Records": [dynamodb.lambda_record(i, esm.event_source_arn, backend.region_name) for i in items]}
            outcome = self.service.invoke_batch(esm.function_arn, event, None)
            if outcome.ok:
                state.failures = 0
                esm.lambdalab_cursor = (shard, cursor + len(items))
                return
            state.failures += 1
            retries = esm.max_retry_attempts if esm.max_retry_attempts is not None else -1
            if outcome.invoked and 0 <= retries < state.failures:
                # Retries used up: Lambda skips the batch (after recording it to OnFailure).
                state.failures = 0
                esm.lambdalab_cursor = (shard, cursor + len(items))
                return
            # The shard is blocked on this batch until it succeeds, as on Lambda.
            state.retry_at = time.monotonic() + _STREAM_BACKOFF_S[min(state.failures, len(_STREAM_BACKOFF_S)) - 1]
        finally:
            with self._lock:
                state.in_flight -= 1


def _succeeded(messages: list[Any], result: Any, partial: bool) -> list[Any]:
    """The messages of a successful batch that Lambda deletes (all, unless some are reported failed)."""
    if not partial or not isinstance(result, dict) or not result.get("batchItemFailures"):
        return list(messages)
    failures = result["batchItemFailures"]
    ids = {f.get("itemIdentifier") for f in failures if isinstance(f, dict)}
    if None in ids or "" in ids or not ids <= {m.id for m in messages}:
        return []  # a malformed report fails the whole batch, as on Lambda
    return [m for m in messages if m.id not in ids]
