"""What a lesson notebook needs to find its code: the track (labs or solutions), its packages, sample sizes."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from lambdalab._util.cache import cache_root
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


def source_with(code_dir: Path, include: tuple[Path, ...]) -> Path:
    """A source folder holding `code_dir` (its requirements.txt included) and the `include`d files
    at its top level, for a target that builds the package itself for its own platform
    (`CloudTarget.create_function`); cached by content, so it is made once per change."""
    code_dir = Path(code_dir)
    files = [p for p in sorted(code_dir.iterdir()) if p.is_file() and not p.name.endswith(".pyc")] + list(include)
    digest = hashlib.sha256(b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in files)).hexdigest()[:16]
    folder = cache_root() / "sources" / f"{code_dir.name}-{digest}"
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder.parent))
        for path in files:
            shutil.copy2(path, tmp / path.name)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process made it first: same content
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def samples(full: int, quick: int) -> int:
    """How many samples a measuring cell takes: `quick` when `$LAMBDALAB_QUICK=1` (CI), else `full`."""
    return quick if os.environ.get(QUICK_ENV) == "1" else full
