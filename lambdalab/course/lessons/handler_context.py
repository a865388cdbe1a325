"""Lessons 02 and 03's instruments (the handler, its context, its environment), through the Lambda
API on either target.

`LessonFunctions(target)` makes a lesson's one role (it may write the run's own log groups, plus
what the lesson adds, e.g. its table) and `deploy`s functions under it; `HandlerLesson` adds
lesson 02's queue, the functions' on-failure destination. Calls go through the Invoke API as any
caller's would: `call` synchronously with the log tail (`LogType=Tail`), `send` asynchronously
(`InvocationType=Event`). A failed event's record is the message Lambda sends to the on-failure
destination; it names the event's request id, and its attempts are the REPORT lines with that id
in the function's log group (Lambda keeps the id across retries).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdalab.course.target import reports
from lambdalab.course.target.base import CloudTarget


@dataclass(frozen=True)
class Call:
    """A synchronous Invoke's answer: status, the X-Amz-Function-Error header, payload, log tail."""

    function: str
    status: int
    function_error: str | None
    payload: bytes
    log_lines: tuple[str, ...]

    @property
    def result(self) -> Any:
        """The payload as JSON (the handler's return value, or the error document)."""
        return json.loads(self.payload) if self.payload else None

    @property
    def error(self) -> dict[str, Any] | None:
        return self.result if self.function_error else None

    @property
    def report(self) -> Any:
        """The invocation's REPORT line, parsed, from the log tail."""
        return next(r for r in map(reports.parse_report_line, reversed(self.log_lines)) if r is not None)


def call_rows(calls: Sequence[Call]) -> list[dict[str, Any]]:
    """One row per synchronous call: its REPORT numbers and how it ended."""
    rows = []
    for n, c in enumerate(calls, 1):
        outcome = "ok" if not c.function_error else f"{(c.error or {}).get('errorType', c.function_error)}"
        rows.append({"run": n, "Duration ms": c.report.duration_ms, "Billed ms": c.report.billed_ms,
                     "Max Memory Used MB": c.report.max_memory_used_mb, "outcome": outcome})
    return rows


class LessonFunctions:
    """A lesson's functions on a target, under one role: it may write the run's own log groups,
    and whatever `statements` add (a lesson's table or queue), nothing else."""

    def __init__(self, target: CloudTarget, code_dir: Path, statements: Sequence[dict[str, Any]] = ()):
        self.target = target
        self.code_dir = code_dir
        own_logs = target.arn("logs", f"log-group:{reports.log_group(target.run.prefix)}*:*")
        self.role = target.create_role("functions-role", [
            {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": own_logs},
            *statements])

    def deploy(self, name: str, handler: str, code_dir: Path | None = None, *, memory: int = 128,
               timeout: int = 3, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        return self.target.create_function(name, code_dir or self.code_dir, handler, role=self.role,
                                           memory=memory, timeout=timeout, env=env)

    def update(self, name: str, **configuration: Any) -> None:
        """UpdateFunctionConfiguration, then wait until it is done (Lambda retires the old environments)."""
        lam = self.target.client("lambda")
        lam.update_function_configuration(FunctionName=self.target.name(name), **configuration)
        lam.get_waiter("function_updated_v2").wait(FunctionName=self.target.name(name),
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    def call(self, name: str, event: Any) -> Call:
        answer = self.target.client("lambda").invoke(FunctionName=self.target.name(name), LogType="Tail",
                                                     Payload=json.dumps(event).encode())
        tail = base64.b64decode(answer.get("LogResult", "")).decode("utf-8", "replace")
        return Call(name, answer["StatusCode"], answer.get("FunctionError"), answer["Payload"].read(),
                    tuple(tail.splitlines()))

    def burst(self, name: str, events: Sequence[Any]) -> list[Call]:
        """Send every event at the same moment (one thread each); the calls come back in order."""
        with ThreadPoolExecutor(len(events)) as pool:
            return list(pool.map(lambda event: self.call(name, event), events))

    def environments(self, name: str, calls: Sequence[Call]) -> list[str]:
        """The execution environment (log stream) each call ran in, read from CloudWatch Logs once
        the function's log group holds every REPORT line so far."""
        records = self.target.settle(name, len(self.target.records(name)))
        stream = {r.report.request_id: r.log_stream for r in records}
        wanted = {c.report.request_id for c in calls}
        if not wanted <= stream.keys():  # a REPORT line still on its way to CloudWatch Logs
            records = self.target.settle(name, len(records) + len(wanted - stream.keys()))
            stream = {r.report.request_id: r.log_stream for r in records}
        return [stream[c.report.request_id] for c in calls]

    def send(self, name: str, event: Any) -> int:
        """Queue an asynchronous event; returns the status code (202: accepted)."""
        answer = self.target.client("lambda").invoke(FunctionName=self.target.name(name), InvocationType="Event",
                                                     Payload=json.dumps(event).encode())
        return answer["StatusCode"]


class HandlerLesson(LessonFunctions):
    """Lesson 02's functions, with a queue for failure records the role may send to."""

    def __init__(self, target: CloudTarget, code_dir: Path):
        sqs = target.client("sqs")
        self.queue_url = sqs.create_queue(QueueName=target.name("failures"), tags=target.tags)["QueueUrl"]
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url,
                                                  AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        super().__init__(target, code_dir, [{"Effect": "Allow", "Action": "sqs:SendMessage",
                                             "Resource": self.queue_arn}])

    def on_failure_to_queue(self, name: str, retries: int) -> None:
        """Failed events of `name`: `retries` more attempts, then a record to the lesson's queue."""
        self.target.client("lambda").put_function_event_invoke_config(
            FunctionName=self.target.name(name), MaximumRetryAttempts=retries,
            DestinationConfig={"OnFailure": {"Destination": self.queue_arn}})

    def failure_records(self, count: int, *, timeout: float = 60.0) -> list[dict[str, Any]]:
        """The first `count` records Lambda sent to the queue (long polling, up to `timeout`)."""
        sqs = self.target.client("sqs")
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            for message in sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=2).get("Messages", []):
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        if len(found) < count:
            raise reports.SettleTimeout(f"{len(found)} of {count} failure records in {timeout:g} s")
        return found

    def attempts(self, name: str, request_id: str, count: int = 1, *, timeout: float = 60.0
                 ) -> list[reports.LoggedReport]:
        """The REPORT lines of one event's attempts, oldest first, once there are `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.target.records(name) if r.report.request_id == request_id]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise reports.SettleTimeout(f"{name}: {len(found)} of {count} attempts of {request_id} logged")
            time.sleep(0.2)

    def log_events(self, name: str, pattern: str = "") -> list[dict[str, Any]]:
        """The function's log events (FilterLogEvents, optionally with a filter pattern), oldest first."""
        return reports.read_events(self.target.client("logs"), self.target.name(name), pattern)
