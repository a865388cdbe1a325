"""End to end through the local cloud: an S3 upload to the handler starting, and a thumbnail fan-out.

Rows:
- latency from `put_object` returning to the triggered handler's first line (p50, p99), one
  upload at a time into a warm function (the handler reports `time.time()` on entry);
- fan-out: BENCH_FANOUT_UPLOADS (default 1,000) uploads of an 800x600 JPEG into a bucket whose
  trigger runs the course's thumbnail function (solutions/thumbnail) at 1,769 MB (one vCPU's
  share), with reserved concurrency 10 and then 1: thumbnails per second once the environments
  are warm (a warm-up of twice the concurrency runs first, unmeasured), the ratio (target >= 1.7x
  on a 2-core machine), and that none is lost (every thumbnail written, 0 failed events).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from lambdalab._util.stats import median, percentile
from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.course.lessons import thumbnails
from lambdalab.course.paths import package

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = Path(__file__).parent / "handlers"
SOLUTION = ROOT / "solutions" / "thumbnail"
LATENCY_UPLOADS = int(os.environ.get("BENCH_LATENCY_UPLOADS", "200"))
FANOUT_UPLOADS = int(os.environ.get("BENCH_FANOUT_UPLOADS", "1000"))
UPLOAD_THREADS = 4  # enough that uploading never starves ten environments


def _trigger(cloud: LocalCloud, bucket: str, function_arn: str) -> None:
    cloud.client("s3").put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": function_arn, "Events": ["s3:ObjectCreated:*"]}]})


def upload_to_handler_latency(n: int) -> tuple[list[float], list[float]]:
    """(ms from put_object returning, ms from put_object being called) to the handler's first line."""
    from_return, from_call = [], []
    with LocalCloud(cpu_limit=True) as cloud:
        s3 = cloud.client("s3")
        s3.create_bucket(Bucket="bench-latency")
        fn = cloud.deploy("stamp", HANDLERS, "stamp.handler", memory=1769, timeout=10)
        _trigger(cloud, "bench-latency", fn["FunctionArn"])
        s3.put_object(Bucket="bench-latency", Key="warm-up", Body=b"x")  # the cold start is not measured
        cloud.settle(60)
        for i in tqdm(range(n), desc="put_object -> handler", leave=False):
            called = time.time()
            s3.put_object(Bucket="bench-latency", Key=f"k{i}", Body=b"x")
            returned = time.time()
            cloud.settle(30)
            inv = cloud.records("stamp")[-1]
            assert inv.ok, inv.error
            from_return.append((inv.result - returned) * 1000)
            from_call.append((inv.result - called) * 1000)
    return from_return, from_call


def fan_out(n: int, reserved: int, photo: bytes) -> tuple[float, int, int, int]:
    """(seconds from the first upload to the last thumbnail, thumbnails written, failed invocations,
    events that failed for good) for `n` uploads with `reserved` concurrency."""
    with LocalCloud(cpu_limit=True, account_concurrency=max(20, reserved)) as cloud:
        s3 = cloud.client("s3")
        for bucket in ("fan-photos", "fan-thumbnails"):
            s3.create_bucket(Bucket=bucket)
        fn = cloud.deploy("thumbnails", package(SOLUTION), "handler.lambda_handler", memory=1769, timeout=30,
                          env={"THUMBNAIL_BUCKET": "fan-thumbnails"})
        cloud.client("lambda").put_function_concurrency(FunctionName="thumbnails",
                                                         ReservedConcurrentExecutions=reserved)
        _trigger(cloud, "fan-photos", fn["FunctionArn"])
        # Warm-up, not measured: the environments' cold starts, so the rows compare steady throughput.
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            list(pool.map(lambda i: s3.put_object(Bucket="fan-photos", Key=f"warm-up/{i}.jpg", Body=photo),
                          range(2 * reserved)))
        cloud.settle(300)
        before = len(cloud.records("thumbnails"))
        bar = tqdm(total=n, desc=f"{n} uploads, reserved concurrency {reserved}", leave=False)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            for _ in pool.map(lambda i: s3.put_object(Bucket="fan-photos", Key=f"photo-{i:05d}.jpg", Body=photo),
                              range(n)):
                bar.update()
        if not cloud.settle(1800):
            print(f"fan-out with reserved concurrency {reserved}: still busy after 30 minutes", file=sys.stderr)
        elapsed = time.perf_counter() - t0
        bar.close()
        written = sum(page.get("KeyCount", 0) for page in
                      s3.get_paginator("list_objects_v2").paginate(Bucket="fan-thumbnails", Prefix="thumb-photo-"))
        failed_invocations = sum(1 for inv in cloud.records("thumbnails")[before:] if not inv.ok)
        return elapsed, written, failed_invocations, len(cloud.runtime.dead_letters)


def main() -> None:
    print(f"\nEnd to end in the local cloud, Python {sys.version.split()[0]} on {os.cpu_count()} cores")
    from_return, from_call = upload_to_handler_latency(LATENCY_UPLOADS)
    print(f"put_object -> handler start, {LATENCY_UPLOADS} uploads into a warm function (ms): "
          f"from its return p50 {median(from_return):.1f}, p99 {percentile(from_return, 99):.1f}; "
          f"from its call p50 {median(from_call):.1f}, p99 {percentile(from_call, 99):.1f}")
    photo = thumbnails.photo_jpeg(800, 600)
    print(f"\nFan-out: {FANOUT_UPLOADS} uploads of an 800x600 JPEG ({len(photo) / 1e3:.0f} kB), "
          f"thumbnail function at 1769 MB (1 vCPU share), {UPLOAD_THREADS} uploading threads")
    print(f"{'reserved concurrency':>21} {'seconds':>9} {'thumbs/s':>9} {'written':>8} "
          f"{'failed invocations':>19} {'failed events':>14}")
    rates = {}
    for reserved in (10, 1):
        elapsed, written, failed, lost = fan_out(FANOUT_UPLOADS, reserved, photo)
        rates[reserved] = written / elapsed
        print(f"{reserved:>21} {elapsed:>9.1f} {rates[reserved]:>9.1f} {written:>8} {failed:>19} {lost:>14}")
    ratio = rates[10] / rates[1] if rates[1] else float("nan")
    print(f"throughput ratio, concurrency 10 vs 1: {ratio:.2f}x (target >= 1.7x: "
          f"{'met' if ratio >= 1.7 else 'NOT met'})")
