"""`lambdalab check LAB`: run a lab's checks against your code and print the report."""

from __future__ import annotations

import argparse
import sys

from lambdalab.course.checks import (
    DEFAULT_TRACK,
    TRACK_ENV,
    TRACKS,
    UnknownLabError,
    check,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `check LAB [--track labs|solutions] [--stretch]` to a CLI's subcommands."""
    parser = subparsers.add_parser("check", help="run a lab's checks and print a pass/fail report")
    parser.add_argument("lab", help="the lab's name, e.g. hello")
    parser.add_argument("--track", choices=TRACKS, default=None,
                        help=f"whose code to check (default: ${TRACK_ENV}, else {DEFAULT_TRACK})")
    parser.add_argument("--stretch", action="store_true", help="run the checks of the lab's optional stretch goal")
    parser.set_defaults(func=_cli_check)


def _cli_check(args: argparse.Namespace) -> int:
    try:
        report = check(args.lab, args.track, stretch=args.stretch)
    except (UnknownLabError, ValueError) as exc:
        print(f"lambdalab check: {exc}", file=sys.stderr)
        return 2
    report.command = f"lambdalab check {args.lab}" + (f" --track {args.track}" if args.track else "") \
        + (" --stretch" if args.stretch else "")
    print(report)
    return 0 if report.passed else 1
