"""`lambdalab invoke DIR --handler MODULE.FUNCTION`: run a handler in a local execution environment."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from lambdalab._util.logtext import log_text
from lambdalab.runtime.errors import LambdaLabError


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--env takes KEY=VALUE, got {text!r}")
    return key, value


def _read_event(source: str | None) -> object:
    if source is None:
        return {}
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as e:
        raise ValueError(f"cannot read event file {source!r}: {e.strerror}") from None
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as e:
        raise ValueError(f"event {'from stdin' if source == '-' else source!r} is not valid JSON: {e}") from None


def cmd_invoke(args: argparse.Namespace) -> int:
    from lambdalab.runtime.config import FunctionConfig
    from lambdalab.runtime.service import LocalRuntime

    try:
        event = _read_event(args.event)
        code_dir = Path(args.code_dir)
        name = re.sub(r"[^A-Za-z0-9_-]", "-", code_dir.resolve().name)[:64] or "function"
        config = FunctionConfig(name=name, code_dir=code_dir, handler=args.handler, memory_mb=args.memory,
                                timeout_s=args.timeout, environment=dict(args.env or []))
    except (ValueError, LambdaLabError) as e:
        print(f"lambdalab invoke: error: {e}", file=sys.stderr)
        return 2
    failed = False
    with LocalRuntime(account_concurrency=1, cpu_limit=not args.no_cpu_limit) as rt:
        rt.deploy(config)
        for _ in range(args.repeat):
            inv = rt.invoke(name, event)
            # One entry can hold several lines (a traceback): print them as lines, as CloudWatch shows them.
            print(log_text(inv.log_lines), file=sys.stderr, flush=True)
            body = inv.payload.decode("utf-8", "replace")
            print(body if inv.ok or not inv.error else json.dumps(inv.error), flush=True)
            failed = failed or not inv.ok
    return 1 if failed else 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(sub: Any) -> None:
    inv = sub.add_parser("invoke", help="run a handler in a local execution environment",
                         description="Run a handler N times in one environment (cold, then warm). Results go to "
                                     "stdout as JSON lines; START/END/REPORT and handler logs go to stderr.")
    inv.add_argument("code_dir", help="directory holding the handler module")
    inv.add_argument("--handler", required=True, help="MODULE.FUNCTION, e.g. handler.lambda_handler")
    inv.add_argument("--event", help="JSON event file, or - for stdin (default: {})")
    inv.add_argument("--memory", type=int, default=128, help="memory size in MB (128-10240)")
    inv.add_argument("--timeout", type=float, default=3.0, help="timeout in seconds (1-900)")
    inv.add_argument("--repeat", type=_positive_int, default=1, help="number of invocations in a row")
    inv.add_argument("--env", type=_env_pair, action="append", metavar="KEY=VALUE", help="environment variable")
    inv.add_argument("--no-cpu-limit", action="store_true", help="don't scale the CPU share with memory")
    inv.set_defaults(func=cmd_invoke)
