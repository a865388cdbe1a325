"""Fixtures shared by the lab checks: which track to check, where its code is, a live runtime.

The checks run against `$LAMBDALAB_TRACK` (`labs`, the learner's code, by default;
`solutions` in CI); `lambdalab.course.checks.check` sets it for the pytest run it starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lambdalab.course.checks import STRETCH_MARK, fail_invocation, resolve_track
from lambdalab.course.labs import find_root, load_module
from lambdalab.course.paths import package
from lambdalab.runtime.records import Invocation
from lambdalab.runtime.service import LocalRuntime


def pytest_configure(config: pytest.Config) -> None:
    # Here rather than in pyproject.toml: check() runs these checks in scratch courses too.
    config.addinivalue_line("markers", f"{STRETCH_MARK}: a check of the lab's optional stretch goal "
                                       "(run by check(lab, stretch=True), left out of check(lab))")


@pytest.fixture(scope="session")
def track() -> str:
    """"labs" or "solutions", from $LAMBDALAB_TRACK."""
    return resolve_track()


@pytest.fixture(scope="session")
def lab_dir(track: str) -> Callable[[str], Path]:
    """lab_dir("hello") -> <root>/<track>/hello (which must exist), built as a deployment package:
    its requirements.txt installed beside it, as `lambdalab build` does."""
    root = find_root()

    def locate(lab: str) -> Path:
        path = root / track / lab
        if not path.is_dir():
            pytest.fail(f"{track}/{lab}/ does not exist under {root}", pytrace=False)
        include = (root / track / "thumbnail" / "thumbnail.py",) if lab == "tuning" else ()
        return package(path, include=include)

    return locate


@pytest.fixture(scope="session")
def lab_module(track: str) -> Callable[[str], object]:
    """lab_module("tuning/choose.py") -> that file of the track, imported from the file itself
    (not from whatever is on sys.path); a missing file fails the check naming it."""
    def load(relative: str) -> object:
        path = find_root() / track / relative
        if not path.is_file():
            pytest.fail(f"{track}/{relative} does not exist", pytrace=False)
        return load_module(path, f"lab_{relative.replace('/', '_').removesuffix('.py')}_{track}")
    return load


@pytest.fixture
def runtime() -> Iterator[LocalRuntime]:
    """A fresh LocalRuntime per check, closed (its environments stopped) afterwards."""
    with LocalRuntime() as rt:
        yield rt


@pytest.fixture
def invoke(runtime: LocalRuntime) -> Callable[[str, object], Invocation]:
    """invoke(function, event) -> the Invocation; the check fails with the handler's own error
    (e.g. "NotImplementedError: Exercise 'greeting' ...") and where it raised, when the invocation failed."""

    def call(function: str, event: object) -> Invocation:
        inv = runtime.invoke(function, event)
        if not inv.ok:
            fail_invocation(inv)
        return inv

    return call
