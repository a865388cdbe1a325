"""`lambdalab lint-policy FILE...`: lint IAM policy documents with the course's linter."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lambdalab.course.iampolicy import Finding, lint_file, lint_repository


def cmd_lint_policy(args: argparse.Namespace) -> int:
    """Print each file's findings; exit 1 when there is any, 2 when a file cannot be read."""
    from lambdalab.course.labs import find_root

    if args.files:
        results: dict[str, list[Finding]] = {}
        for name in args.files:
            try:
                findings = lint_file(name)
            except ValueError as e:
                print(f"lambdalab lint-policy: error: {e}", file=sys.stderr)
                return 2
            results[name] = findings if findings is not None else [
                Finding("malformed", None, "not an IAM policy document (no Statement)")]
    else:
        results = lint_repository(find_root())
    for name, findings in results.items():
        for finding in findings:
            print(f"{name}: {finding}")
    bad = sum(1 for f in results.values() if f)
    print(f"{len(results)} policies, {bad} with findings", file=sys.stderr)
    return 1 if bad else 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add `lambdalab lint-policy [FILE...]` to the `lambdalab` command."""
    p = subparsers.add_parser("lint-policy", help="lint IAM policy documents (JSON)",
                              description="Report each IAM policy's findings (rule, statement index, reason). "
                                          "Without files: every *.json policy in the course repository.")
    p.add_argument("files", nargs="*", metavar="FILE", help="policy JSON files")
    p.set_defaults(func=cmd_lint_policy)
    return p
