"""`lambdalab teardown [--run ID | --all]`: delete what the course's runs left in an AWS account.

It reaches the account as the `aws` target does (standard credential chain, `AWS_PROFILE`,
`AWS_ENDPOINT_URL` for a stand-in) and asks for the same confirmation (`LAMBDALAB_AWS_ACCOUNT`);
it deletes only names carrying a run's prefix, then lists every service again and fails if
anything is left. Safe to run again after an interruption.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lambdalab.course.target import teardown
from lambdalab.course.target.aws import aws_session, clients_of, confirmed_account
from lambdalab.course.target.runs import PREFIX, Run
from lambdalab.runtime.errors import LambdaLabError


def cmd_teardown(args: argparse.Namespace) -> int:
    try:
        prefix = Run(args.run).prefix if args.run else PREFIX
        session = aws_session()
        account = confirmed_account(session)
    except (LambdaLabError, ValueError) as e:
        print(f"lambdalab teardown: error: {e}", file=sys.stderr)
        return 2
    what = f"run {args.run}" if args.run else "every run"
    print(f"Tearing down {what} in account {account}, region {session.region_name}", flush=True)
    left = teardown.teardown(clients_of(session), prefix,
                             report=lambda r: print(f"  deleted {r.service} {r.kind} {r.name}", flush=True))
    if left:
        print("still there after teardown: " + ", ".join(f"{r.kind} {r.name}" for r in left), file=sys.stderr)
        return 1
    print("nothing of " + what + " remains (listed: " + ", ".join(
        sorted({lister.__name__.strip("_") for lister in teardown.LISTERS})) + ")", flush=True)
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "teardown", help="delete what a run (or every run) of the course created in an AWS account",
        description="Delete every resource whose name carries a run's prefix (lw-<run id>-), then list "
                    "each service again to prove nothing is left. Needs LAMBDALAB_AWS_ACCOUNT.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", metavar="ID", help="the run id (see `lambdalab status`)")
    which.add_argument("--all", action="store_true", help="every run of the course")
    p.set_defaults(func=cmd_teardown)
    return p
