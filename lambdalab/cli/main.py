"""The `lambdalab` command: invoke a handler locally, generate events, run the local cloud, labs and checks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lambdalab.cli import build, check, cloud, deploy, doctor, events, invoke, labs, lint_policy, status, teardown

COMMANDS = (invoke, build, events, cloud, labs, check, lint_policy, doctor, deploy, teardown, status)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lambdalab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
