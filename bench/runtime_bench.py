"""Warm-invoke latency and cold-start Init Duration of the local runtime, beside their baselines."""

from __future__ import annotations

import os
import statistics as st
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.service import LocalRuntime

from .table import print_table

HANDLERS = Path(__file__).parent / "handlers"
WARM_CALLS = int(os.environ.get("BENCH_WARM_CALLS", "2000"))
COLD_STARTS = int(os.environ.get("BENCH_COLD_STARTS", "25"))

_PIPE_WORKER = """
import sys
read, write = sys.stdin.buffer.readline, sys.stdout.buffer
for line in iter(read, b""):
    write.write(line); write.flush()
"""


def pipe_round_trips(n: int) -> list[float]:
    """A bare request/response over pipes to a worker process: the floor for any IPC."""
    proc = subprocess.Popen([sys.executable, "-c", _PIPE_WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    samples = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            proc.stdin.write(b'{"event": {}}\n')
            proc.stdin.flush()
            proc.stdout.readline()
            samples.append((time.perf_counter() - t0) * 1000)
    finally:
        proc.stdin.close()
        proc.wait()
    return samples


def direct_calls(n: int) -> list[float]:
    sys.path.insert(0, str(HANDLERS))
    try:
        import noop
    finally:
        sys.path.pop(0)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        noop.handler({}, None)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def warm_invokes(n: int, client: str = "awslambdaric") -> list[float]:
    with LocalRuntime(client=client) as rt:
        rt.deploy(FunctionConfig(name="noop", code_dir=HANDLERS, handler="noop.handler", memory_mb=1769))
        rt.invoke("noop", {})  # the cold start is not part of this table
        samples = []
        for _ in tqdm(range(n), desc=f"warm invokes ({client})", leave=False):
            t0 = time.perf_counter()
            inv = rt.invoke("noop", {})
            samples.append((time.perf_counter() - t0) * 1000)
            assert inv.ok and not inv.cold
    return samples


def init_durations(handler: str, n: int, client: str = "awslambdaric", sandbox: bool = True,
                   setups: list[float] | None = None) -> list[float]:
    """Init Durations of `n` cold starts; the sandbox's own setup of each (outside Init Duration) into `setups`."""
    samples = []
    with LocalRuntime(idle_timeout_s=3600, client=client, sandbox=sandbox) as rt:
        for _ in tqdm(range(n), desc=f"cold starts {handler}", leave=False):
            rt.deploy(FunctionConfig(name="cold", code_dir=HANDLERS, handler=handler, memory_mb=1769))
            inv = rt.invoke("cold", {})
            assert inv.ok and inv.cold, inv.error
            samples.append(inv.init_ms)
            if setups is not None:
                setups.append(rt.environments("cold")[0].sandbox.setup_ms)
    return samples


def restore_durations(handler: str, n: int) -> list[float]:
    """Snapshot-restore starts: each new environment is forked from one initialised template."""
    samples = []
    with LocalRuntime(idle_timeout_s=3600) as rt:
        rt.deploy(FunctionConfig(name="snap", code_dir=HANDLERS, handler=handler, memory_mb=1769, snap_start=True))
        for _ in tqdm(range(n), desc=f"restores {handler}", leave=False):
            inv = rt.invoke("snap", {})
            assert inv.ok and inv.cold and inv.restore_ms is not None, inv.error
            samples.append(inv.restore_ms)
            for env in rt.environments("snap"):  # the next invoke needs a new environment
                env.kill()
            while rt.environments("snap") and any(e.alive for e in rt.environments("snap")):
                time.sleep(0.005)
    return samples


def fresh_python(code: str, n: int) -> list[float]:
    """Spawn to "imports done" (a line on stdout), like Init Duration: spawn to the first /next."""
    samples = []
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    for _ in range(n):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c",
                                 f"{code}\nprint('ready', flush=True)\nimport sys; sys.stdin.read()"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        proc.stdout.readline()
        samples.append((time.perf_counter() - t0) * 1000)
        proc.stdin.close()
        proc.wait()
    return samples


def main() -> None:
    print(f"Python {sys.version.split()[0]} on {os.cpu_count()} cores; "
          f"{WARM_CALLS} warm calls, {COLD_STARTS} cold starts")
    pipe = pipe_round_trips(WARM_CALLS)
    direct = direct_calls(WARM_CALLS)
    warm = warm_invokes(WARM_CALLS)
    warm_bootstrap = warm_invokes(WARM_CALLS, "bootstrap")
    print_table("Warm invoke of a no-op handler (caller -> Runtime API -> awslambdaric -> handler -> caller), 1769 MB",
                [("direct Python call", direct), ("bare pipe round trip to a worker", pipe),
                 ("LocalRuntime.invoke, warm", warm),
                 ("same, lambdalab.runtime.ric client (macOS)", warm_bootstrap)],
                baseline="bare pipe round trip to a worker")
    boto = "import boto3; boto3.client('s3')"
    setups: list[float] = []
    rows = [
        ("fresh `python -c pass` (spawn to ready)", fresh_python("pass", COLD_STARTS)),
        ("fresh `python -c` importing awslambdaric", fresh_python(
            "import awslambdaric.__main__, awslambdaric.bootstrap, awslambdaric.lambda_runtime_client", COLD_STARTS)),
        ("Init Duration: no-op handler", init_durations("noop.handler", COLD_STARTS, setups=setups)),
        ("sandbox setup, outside Init Duration (as Lambda's microVM start)", setups),
        ("Init Duration: no-op, lambdalab.runtime.ric client",
         init_durations("noop.handler", COLD_STARTS, "bootstrap")),
        ("Init Duration: no-op handler, sandbox off", init_durations("noop.handler", COLD_STARTS, sandbox=False)),
        ("fresh `python -c` boto3 + S3 client", fresh_python(boto, COLD_STARTS)),
        ("Init Duration: boto3 + S3 client at init", init_durations("boto_init.handler", COLD_STARTS)),
        ("Restore Duration: boto3 + S3 client (snap_start)", restore_durations("boto_init.handler", COLD_STARTS)),
    ]
    print_table("Cold start: Init Duration beside a fresh interpreter doing the same imports",
                rows, baseline="fresh `python -c pass` (spawn to ready)")
    d = dict(rows)
    spawn = st.median(d["fresh `python -c pass` (spawn to ready)"])
    ric_imports = st.median(d["fresh `python -c` importing awslambdaric"])
    noop_init = st.median(d["Init Duration: no-op handler"])
    boto_fresh = st.median(d["fresh `python -c` boto3 + S3 client"])
    boto_init = st.median(d["Init Duration: boto3 + S3 client at init"])
    print(f"runtime overhead at p50: no-op {noop_init - spawn:+.1f} ms, "
          f"boto3 {boto_init - boto_fresh:+.1f} ms "
          f"(target <= 25 ms); warm p50 {st.median(warm):.3f} ms (target <= 1 ms)")
    print(f"of which awslambdaric's own imports: {ric_imports - spawn:+.1f} ms; "
          f"lambdalab's own part (Runtime API handshake; the sandbox's setup, "
          f"p50 {st.median(setups):.1f} ms, is outside Init Duration): {noop_init - ric_imports:+.1f} ms "
          f"(target <= 5 ms: {'met' if noop_init - ric_imports <= 5 else 'NOT met'})")
    print(f"the sandbox's part of a no-op Init Duration: "
          f"{noop_init - st.median(d['Init Duration: no-op handler, sandbox off']):+.1f} ms")
