"""`lambdalab labs build | check`: generate labs/ from solutions/ and check they agree."""

from __future__ import annotations

import argparse
from pathlib import Path

from lambdalab.course.labs import LabsError, build, check, find_root, read_manifest


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `labs build [--force]` and `labs check` to a CLI's subcommands."""
    labs = subparsers.add_parser("labs", help="generate labs/ from solutions/, or check it is in sync")
    commands = labs.add_subparsers(dest="labs_command", metavar="{build,check}", required=True)
    build_cmd = commands.add_parser("build", help="regenerate labs/ from solutions/")
    build_cmd.add_argument("--force", action="store_true",
                           help="overwrite or delete labs files even if they were edited")
    build_cmd.set_defaults(func=_cli_build)
    check_cmd = commands.add_parser("check", help="exit 1 and list the problems when labs/ is out of date")
    check_cmd.set_defaults(func=_cli_check)


def _cli_build(args: argparse.Namespace) -> int:
    root = find_root()
    try:
        changed = build(root, force=args.force)
    except LabsError as exc:
        print(exc)
        return 1
    for path in changed:
        print(f"{'wrote' if path.exists() else 'removed'} {path.relative_to(root).as_posix()}")
    print(_up_to_date(root))
    return 0


def _cli_check(args: argparse.Namespace) -> int:
    root = find_root()
    problems = check(root)
    if problems:
        print("labs/ is out of date; run `lambdalab labs build`:")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(_up_to_date(root))
    return 0


def _up_to_date(root: Path) -> str:
    count = len(read_manifest(root / "labs"))
    return f"labs/ is up to date ({count} file{'' if count == 1 else 's'})"
