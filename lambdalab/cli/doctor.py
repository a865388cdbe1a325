"""`lambdalab doctor`: the machine check the notebooks run, from a shell; exit 1 if anything is missing."""

from __future__ import annotations

import argparse
import platform
import sys
from typing import Any

from lambdalab.course.doctor import SUPPORTED, findings, report


def cmd_doctor(args: argparse.Namespace) -> int:
    rows = findings()
    print(report(rows))
    lo, hi = SUPPORTED
    if sys.version_info[:2] > hi:
        print(f"note: Python {platform.python_version()} is newer than the versions tested "
              f"({lo[0]}.{lo[1]} to {hi[0]}.{hi[1]})")
    return 0 if all(f.ok for f in rows) else 1


def register(sub: Any) -> None:
    parser = sub.add_parser("doctor", help="check this machine for what the course needs",
                            description="Report the Python version, the user, the CPU-share mechanism, where "
                                        "PostgreSQL comes from, and every package the course needs.")
    parser.set_defaults(func=cmd_doctor)
