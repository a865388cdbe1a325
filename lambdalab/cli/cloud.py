"""`lambdalab cloud`: run the local cloud in the foreground and print how to reach it."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from lambdalab.cloud.local_cloud import LocalCloud
from lambdalab.runtime.config import REGION
from lambdalab.runtime.errors import LambdaLabError


def cmd_cloud(args: argparse.Namespace) -> int:
    """Run a local cloud in the foreground until Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        with LocalCloud(port=args.port, region=args.region, iam_enforcement=args.iam,
                        echo_logs=not args.quiet) as cloud:
            cloud.events.clock.start_realtime()  # schedules fire on the wall clock here
            exports = " ".join(f"{k}={v}" for k, v in cloud.env().items())
            print(f"Local cloud running at {cloud.endpoint}", flush=True)
            print(f"export {exports}", flush=True)
            print("HTTP APIs (apigatewayv2 create_api) and function URLs (lambda create_function_url_config) "
                  "answer at the http://127.0.0.1:PORT address in their ApiEndpoint / FunctionUrl; "
                  "Scheduler schedules fire on the wall clock.", flush=True)
            print("Press Ctrl-C to stop.", flush=True)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            print("Stopping the local cloud...", flush=True)
    except KeyboardInterrupt:  # Ctrl-C while starting or stopping: the with-block closed the cloud
        return 130
    except OSError as e:
        print(f"lambdalab cloud: error: cannot listen on 127.0.0.1:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    except (LambdaLabError, RuntimeError) as e:
        print(f"lambdalab cloud: error: {e}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add `lambdalab cloud [--port N]` to the `lambdalab` command."""
    p = subparsers.add_parser(
        "cloud", help="run the local cloud (moto + the local Lambda runtime) in the foreground",
        description="Start moto's AWS services and the local Lambda runtime on 127.0.0.1, print the "
                    "environment variables that point boto3 and the AWS CLI at them, and serve until "
                    "Ctrl-C. Function logs are echoed to stderr.")
    p.add_argument("--port", type=_port, default=int(os.environ.get("LAMBDALAB_CLOUD_PORT", "0") or 0),
                   help="port to listen on (default: a free one)")
    p.add_argument("--region", default=REGION, help=f"AWS region (default {REGION})")
    p.add_argument("--iam", action="store_true", help="enforce IAM policies (moto's IAM enforcement)")
    p.add_argument("--quiet", action="store_true", help="don't echo function logs to stderr")
    p.set_defaults(func=cmd_cloud)
    return p
