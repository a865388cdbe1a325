"""`lambdalab doctor`: the machine check the notebooks run, from a shell."""

from __future__ import annotations

import argparse
from typing import Any

from lambdalab.course.doctor import findings, report


def cmd_doctor(args: argparse.Namespace) -> int:
    print(report())
    return 0 if all(f.ok for f in findings()) else 1


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check this machine for what the course needs",
                       description="Report the Python version, the packages, the runtime interface client, "
                                   "the CPU-share mechanism and the OS tools the course uses.")
    p.set_defaults(func=cmd_doctor)
