"""What a lesson notebook needs to find its code: the track (labs or solutions), its packages, sample sizes."""

from __future__ import annotations

import os
from pathlib import Path

from lambdalab.build.package import build
from lambdalab.course.checks import resolve_track
from lambdalab.course.labs import find_root

QUICK_ENV = "LAMBDALAB_QUICK"


def lab_dir(lab: str, track: str | None = None) -> Path:
    """The directory of lab `lab` on the selected track (`$LAMBDALAB_TRACK`, default `labs`)."""
    path = find_root() / resolve_track(track) / lab
    if not path.is_dir():
        raise FileNotFoundError(f"no lab {lab!r} at {path}; run `lambdalab labs build` to regenerate labs/")
    return path


def solution_dir(lab: str) -> Path:
    """A reference handler directory (lessons use these for the parts that are not exercises)."""
    return lab_dir(lab, "solutions")


def package(code_dir: Path, *, include: tuple[Path, ...] = ()) -> Path:
    """`code_dir` built as a deployment package (its requirements.txt installed beside it), for the
    workers here; cached, so calling it again after an edit costs only the copy of the code.

    A folder with nothing to add (no requirements.txt, nothing included) is its own package, so
    tracebacks and check reports name the learner's file, not a copy of it."""
    if not include and not (Path(code_dir) / "requirements.txt").is_file():
        return Path(code_dir)
    return build(code_dir, include=include).package_dir


def samples(full: int, quick: int) -> int:
    """How many samples a measuring cell takes: `quick` when `$LAMBDALAB_QUICK=1` (CI), else `full`."""
    return quick if os.environ.get(QUICK_ENV) == "1" else full
