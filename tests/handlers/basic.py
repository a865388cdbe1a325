"""Handlers the runtime tests run for real: one function per behaviour under test."""

import json
import os
import signal
import threading
import time

invocations = 0
print("init: basic module loaded")


def counter(event, context):
    global invocations
    invocations += 1
    print(f"counter at {invocations}")
    return {"invocations": invocations, "pid": os.getpid()}


def context_fields(event, context):
    first = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    second = context.get_remaining_time_in_millis()
    return {
        "aws_request_id": context.aws_request_id,
        "remaining": [first, second],
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
    }


def environ(event, context):
    time.sleep(event.get("sleep", 0))  # keeps the environment busy so a concurrent call needs another
    tmp = os.environ.get("TMPDIR")
    with open(os.path.join(tmp, "scratch.txt"), "w") as f:
        f.write("x")
    return dict(os.environ)


def sleep(event, context):
    print("going to sleep")
    time.sleep(event.get("seconds", 0))
    return {"slept": event.get("seconds", 0), "pid": os.getpid()}


def allocate(event, context):
    block = bytearray(event["mb"] * 1024 * 1024)
    for i in range(0, len(block), 4096):  # touch every page so it is resident
        block[i] = 1
    return {"allocated_mb": event["mb"]}


def fail(event, context):
    print("about to fail")
    raise ValueError(f"bad input: {event.get('why', 'none')}")


def unserialisable(event, context):
    return {"a set": {1, 2}}


def huge_response(event, context):
    return "x" * (7 * 1024 * 1024)


def die(event, context):
    print("killing myself")
    os.kill(os.getpid(), signal.SIGKILL)


_ticks = 0


def _tick():
    global _ticks
    while True:
        _ticks += 1
        time.sleep(0.01)


def background(event, context):
    """Starts a ticking thread once; returns how many ticks happened so far."""
    if not any(t.name == "ticker" for t in threading.enumerate()):
        threading.Thread(target=_tick, name="ticker", daemon=True).start()
    time.sleep(event.get("seconds", 0))
    return {"ticks": _ticks}


def spin(event, context):
    """Busy-loops for a wall-clock time and reports the CPU time it got."""
    cpu0, wall0 = time.process_time(), time.monotonic()
    while time.monotonic() - wall0 < event["seconds"]:
        pass
    return {"cpu": time.process_time() - cpu0, "wall": time.monotonic() - wall0}


def trace(event, context):
    return {"trace": os.environ.get("_X_AMZN_TRACE_ID")}


def echo(event, context):
    print(json.dumps(event))
    return event


def recurse(event, context):
    def down(n):
        return down(n + 1)
    return down(0)
