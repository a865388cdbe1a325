"""`make soak` (`python -m bench.soak`): the local cloud under faults, counted. Not part of `make test`.

Three loads on one LocalCloud, then its close:

1. 2,000 asynchronous events to a function that fails at random (30 %), with a worker killed by
   SIGKILL every few hundred invocations; each success writes one S3 object per event (its side
   effect). Every event must end up succeeded or in the on-failure destination: none lost.
2. 500 parallel S3 uploads to a bucket that notifies a function: one invocation per object.
3. 200 concurrent HTTP requests to an HTTP API, a quarter of them truncated or malformed:
   those must be answered 400 and never invoke the function.

It prints the counts and exits non-zero if a must-be-0 count is not 0: events lost, truncated
requests that invoked the function, and processes, directories and cgroups left after close.
`SOAK_EVENTS`, `SOAK_UPLOADS` and `SOAK_REQUESTS` scale the loads.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

EVENTS = int(os.environ.get("SOAK_EVENTS", "2000"))
UPLOADS = int(os.environ.get("SOAK_UPLOADS", "500"))
REQUESTS = int(os.environ.get("SOAK_REQUESTS", "200"))
KILL_EVERY = 300  # invocations between two SIGKILLs of a busy worker
FAILURE_RATE = 0.3

FLAKY = f"""
import os, random, uuid
import boto3
s3 = boto3.client("s3")

def handler(event, context):
    if random.random() < {FAILURE_RATE}:
        raise RuntimeError("random failure")
    s3.put_object(Bucket="effects", Key=f"{{event['n']}}/{{uuid.uuid4().hex}}", Body=b"done")
    return event["n"]
"""

COUNT = """
def handler(event, context):
    return event["Records"][0]["s3"]["object"]["key"]
"""

HTTP = """
import json
def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"id": json.loads(event.get("body") or "{}").get("id")})}
"""

BAD_REQUESTS = [  # each names its request id in the part that does arrive
    b'POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"id": "bad-%d"',  # body cut short
    b'POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{"id": "bad-%d"}',  # malformed length
    b'POST /pay HTTP/1.1\r\nHost: x\r\nX-Id: bad-%d\r\nContent-Len',  # headers never end
    b'POST /pay HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{"id": "bad-%d"}\r\n',  # bad chunk
]


def _code_dir(root: Path, name: str, source: str) -> Path:
    path = root / name
    path.mkdir()
    (path / "handler.py").write_text(source)
    return path


def _exchange(port: int, data: bytes, half_close: bool) -> int | None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except OSError:
            pass
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.") else None


def _all_keys(s3, bucket: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _drain(sqs, url: str) -> list[dict]:
    bodies, empty = [], 0
    while empty < 3:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        empty = empty + 1 if not got else 0
        for m in got:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def async_events(cloud, code: Path) -> dict[str, int]:
    lam, s3, sqs = cloud.client("lambda"), cloud.client("s3"), cloud.client("sqs")
    s3.create_bucket(Bucket="effects")
    url = sqs.create_queue(QueueName="failures")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    cloud.deploy("flaky", _code_dir(code, "flaky", FLAKY), "handler.handler", timeout=10)
    lam.put_function_concurrency(FunctionName="flaky", ReservedConcurrentExecutions=3)
    lam.put_function_event_invoke_config(FunctionName="flaky", MaximumRetryAttempts=2,
                                         DestinationConfig={"OnFailure": {"Destination": arn}})
    kills, done = [0], threading.Event()

    def killer() -> None:
        next_kill = KILL_EVERY
        while not done.wait(0.02):
            if len(cloud.runtime.records("flaky")) < next_kill:
                continue
            busy = [e for e in cloud.runtime.environments("flaky") if e.state == "busy" and e.pid]
            if busy:
                os.kill(random.choice(busy).pid, signal.SIGKILL)
                kills[0] += 1
                next_kill += KILL_EVERY

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: lam.invoke(FunctionName="flaky", InvocationType="Event",
                                           Payload=json.dumps({"n": n}).encode()), range(EVENTS)))
    cloud.settle(timeout=1800)
    done.set()
    thread.join()
    effects = Counter(k.split("/")[0] for k in _all_keys(s3, "effects"))
    failed = {r["requestPayload"]["n"] for r in _drain(sqs, url)}
    succeeded = {int(n) for n in effects}
    return {"events": EVENTS, "workers killed": kills[0], "succeeded": len(succeeded),
            "in the on-failure destination": len(failed - succeeded),
            "lost": len(set(range(EVENTS)) - succeeded - failed),
            "duplicated side effects": sum(c - 1 for c in effects.values())}


def uploads(cloud, code: Path) -> dict[str, int]:
    s3 = cloud.client("s3")
    fn = cloud.deploy("count", _code_dir(code, "count", COUNT), "handler.handler")
    s3.create_bucket(Bucket="uploads")
    s3.put_bucket_notification_configuration(Bucket="uploads", NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": fn["FunctionArn"], "Events": ["s3:ObjectCreated:*"]}]})
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket="uploads", Key=f"up-{i}", Body=b"x"), range(UPLOADS)))
    cloud.settle(timeout=600)
    keys = Counter(r.result for r in cloud.records("count") if r.error is None)
    return {"uploads": UPLOADS, "invoked": len(keys), "not invoked": UPLOADS - len(keys),
            "invoked twice": sum(c - 1 for c in keys.values())}


def http_requests(cloud, code: Path) -> dict[str, int]:
    fn = cloud.deploy("http", _code_dir(code, "http", HTTP), "handler.handler")
    gw = cloud.client("apigatewayv2")
    api = gw.create_api(Name="soak", ProtocolType="HTTP", Target=fn["FunctionArn"])
    cloud.client("lambda").add_permission(
        FunctionName="http", StatementId="apigw", Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{cloud.region}:{cloud.account_id}:{api['ApiId']}/*")
    port = int(api["ApiEndpoint"].rsplit(":", 1)[1])

    def one(i: int) -> tuple[bool, int | None]:
        if i % 4 == 0:
            return False, _exchange(port, BAD_REQUESTS[(i // 4) % len(BAD_REQUESTS)] % i, half_close=True)
        body = json.dumps({"id": f"good-{i}"}).encode()
        head = f"POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        return True, _exchange(port, head.encode() + body, half_close=False)

    with ThreadPoolExecutor(REQUESTS) as pool:
        answers = list(pool.map(one, range(REQUESTS)))
    cloud.settle(timeout=120)
    invoked = [json.loads(r.event.get("body") or "{}").get("id", "") for r in cloud.records("http")]
    good = Counter(str(status) for ok, status in answers if ok)
    throttled = sum(1 for i in range(REQUESTS) if i % 4) - len(invoked)  # good requests Lambda refused
    # API Gateway answers a Lambda throttle (429 TooManyRequestsException, over the account's
    # concurrency) with 500: https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html
    answered_500 = good.pop("500", 0)
    if answered_500 > throttled:  # a 500 beyond the refusals is a failure of another kind
        good["500"] = answered_500 - throttled
    return {"requests": REQUESTS, "good answered 200": good.pop("200", 0),
            "good throttled by Lambda (answered 500, as API Gateway does)": min(answered_500, throttled),
            "good answered otherwise": sum(good.values()),
            "other answers (status: count)": dict(good),
            "bad answered 400": sum(1 for ok, status in answers if not ok and status == 400),
            "truncated requests that invoked the function": sum(1 for i in invoked if str(i).startswith("bad-"))}


def leftovers(tmp: Path, before: set[int]) -> dict[str, int]:
    import psutil
    me = psutil.Process()
    deadline = time.monotonic() + 10
    while True:
        procs = [p for p in me.children(recursive=True) if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE]
        if not procs or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    dirs = [p for p in tmp.iterdir() if not p.name.startswith("lambdalab-cache-")]
    roots = (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup"))
    cgroups = [p for p in roots if (p / f"lambdalab-{os.getpid()}").exists()]
    return {"leftover processes": len(procs), "leftover directories": len(dirs), "leftover cgroups": len(cgroups)}


def main() -> int:
    import psutil
    # Its own temp dir, so only what this run leaves is counted (other runs may share /tmp).
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = None
    from lambdalab.cloud.local_cloud import LocalCloud

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    started = time.monotonic()
    counts: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as code_root:
        cloud = LocalCloud(cpu_limit=True, async_retry_delays=(0.1, 0.2), account_concurrency=20).start()
        try:
            parts = (("async events", async_events), ("S3 uploads", uploads), ("HTTP requests", http_requests))
            for name, part in parts:
                t0 = time.monotonic()
                counts[name] = part(cloud, Path(code_root))
                counts[name]["seconds"] = round(time.monotonic() - t0)
                print(name, json.dumps(counts[name]), flush=True)
        finally:
            cloud.close()
    counts["after close"] = leftovers(tmp, before)
    print("after close", json.dumps(counts["after close"]))
    print(f"soak run time: {time.monotonic() - started:.0f} s")
    must_be_zero = {"lost": counts["async events"]["lost"],
                    "truncated requests that invoked the function":
                        counts["HTTP requests"]["truncated requests that invoked the function"],
                    **counts["after close"]}
    shutil.rmtree(tmp, ignore_errors=True)
    bad = {k: v for k, v in must_be_zero.items() if v}
    if bad:
        print("FAILED, must be 0:", json.dumps(bad), file=sys.stderr)
        return 1
    print("soak: every must-be-0 count is 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
