"""`lambdalab deploy thumbnail | status | teardown`: the course's own path to the thumbnail app on AWS.

`thumbnail` asks for the same confirmation as every lesson on the aws target (`LAMBDALAB_AWS_ACCOUNT`,
the budget), then deploys what `template.yaml` declares through the course's target
(`course.deploy`), under a run of its own that stays until `teardown`. `status` lists the deployed
apps with their invocations (REPORT lines) and objects; `teardown` deletes one run's app (`--run`)
or every deployed app, then lists every service again to prove nothing of it is left.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lambdalab.course import deploy
from lambdalab.course.target import reports, teardown
from lambdalab.course.target.aws import AwsTarget, aws_session, clients_of, confirmed_account
from lambdalab.course.target.runs import Run, age_text
from lambdalab.runtime.errors import LambdaLabError


def _fail(command: str, error: Exception) -> int:
    print(f"lambdalab deploy {command}: error: {error}", file=sys.stderr)
    return 2


def cmd_thumbnail(args: argparse.Namespace) -> int:
    try:
        target = AwsTarget(deploy.CREATES)
    except LambdaLabError as e:
        return _fail("thumbnail", e)
    try:
        app = deploy.deploy_thumbnail(target, memory=args.memory, show=lambda line: print("  " + line, flush=True))
    except Exception:
        # What was created before the failure carries the run's prefix: say how to remove it.
        print(f"deploy failed; remove what it created with: lambdalab deploy teardown --run {target.run.run_id}",
              file=sys.stderr)
        raise
    print(f"deployed: {app.describe()}")
    print(f"try:      aws s3 cp photo.jpg s3://{app.uploads_bucket}/{deploy.UPLOAD_PREFIX}photo.jpg")
    print(f"remove:   lambdalab deploy teardown --run {app.run.run_id}")
    return 0


def _objects(s3: Any, bucket: str) -> int:
    return sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket))


def cmd_status(args: argparse.Namespace) -> int:
    try:
        session = aws_session()
        account = confirmed_account(session)
    except LambdaLabError as e:
        return _fail("status", e)
    clients = clients_of(session)
    runs = deploy.deployed_runs(clients("lambda"))
    print(f"account {account}, region {session.region_name}: {len(runs)} thumbnail app(s) deployed")
    for run in runs:
        function = run.name(deploy.FUNCTION)
        config = clients("lambda").get_function_configuration(FunctionName=function)
        records = reports.read_reports(clients("logs"), function)
        cold = sum(r.cold for r in records)
        print(f"run {run.run_id} (deployed {age_text(run)} ago): {function}, {config['MemorySize']} MB, "
              f"package {config['CodeSize'] / 2**20:.1f} MiB; {len(records)} invocation(s), {cold} cold")
        for base in (deploy.UPLOADS, deploy.THUMBNAILS):
            bucket = run.name(base)
            print(f"  s3://{bucket}: {_objects(clients('s3'), bucket)} object(s)")
    return 0


def cmd_teardown(args: argparse.Namespace) -> int:
    try:
        session = aws_session()
        account = confirmed_account(session)
        clients = clients_of(session)
        runs = [Run(args.run)] if args.run else deploy.deployed_runs(clients("lambda"))
    except (LambdaLabError, ValueError) as e:
        return _fail("teardown", e)
    print(f"account {account}: tearing down {len(runs)} thumbnail app(s)", flush=True)
    failed = False
    for run in runs:
        left = teardown.teardown(clients, run.prefix,
                                 report=lambda r: print(f"  deleted {r.service} {r.kind} {r.name}", flush=True))
        if left:
            failed = True
            print(f"run {run.run_id}: still there: " + ", ".join(f"{r.kind} {r.name}" for r in left), file=sys.stderr)
        else:
            print(f"run {run.run_id}: nothing left")
    return 1 if failed else 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "deploy", help="deploy the thumbnail app to an AWS account, list it, tear it down",
        description="The course's path to AWS (template.yaml + `sam deploy` is the other). Needs "
                    "LAMBDALAB_AWS_ACCOUNT set to the account the credentials reach.")
    sub = p.add_subparsers(dest="deploy_command", required=True, metavar="{thumbnail,status,teardown}")
    app = sub.add_parser(deploy.APP, help="deploy the thumbnail app (lessons 04, 05 and 15) under a new run")
    app.add_argument("--memory", type=int, default=deploy.MEMORY_MB, help="the function's memory in MB")
    app.set_defaults(func=cmd_thumbnail)
    sub.add_parser("status", help="the deployed thumbnail apps, their invocations and objects").set_defaults(
        func=cmd_status)
    down = sub.add_parser("teardown", help="delete a deployed app (--run) or all of them")
    down.add_argument("--run", metavar="ID", help="the run id `deploy thumbnail` printed (default: every app)")
    down.set_defaults(func=cmd_teardown)
    return p
