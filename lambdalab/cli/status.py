"""`lambdalab status`: what the course's runs have left in an AWS account, per run, with its age."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lambdalab.course.target import teardown
from lambdalab.course.target.aws import aws_session, clients_of, confirmed_account
from lambdalab.course.target.runs import Run, age_text
from lambdalab.runtime.errors import LambdaLabError


def cmd_status(args: argparse.Namespace) -> int:
    try:
        session = aws_session()
        account = confirmed_account(session)
    except LambdaLabError as e:
        print(f"lambdalab status: error: {e}", file=sys.stderr)
        return 2
    runs = teardown.runs(clients_of(session))
    print(f"account {account}, region {session.region_name}: {len(runs)} run(s) with resources")
    for run_id, resources in sorted(runs.items()):
        print(f"run {run_id} (started {age_text(Run(run_id))} ago): {len(resources)} resource(s)")
        for r in resources:
            print(f"  {r.service:13} {r.kind:22} {r.name}")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("status", help="list what the course's runs left in an AWS account, with their age",
                              description="List every resource whose name carries a run's prefix, per run.")
    p.set_defaults(func=cmd_status)
    return p
