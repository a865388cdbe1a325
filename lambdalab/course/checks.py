"""Runs a lab's checks (`tests/labs/test_<lab>.py`) and reports them in a learner-friendly way.

`check("hello")` runs pytest in a subprocess, so a notebook kernel never imports the learner's
handler (and a broken handler cannot break the kernel), against the track named by the
argument or `LAMBDALAB_TRACK`: `labs` (the learner's code, the default) or `solutions`.
Each check is a test: its docstring's first line is the title a learner sees, and a line
starting with `Hint:` (continued until a blank line) is shown when the check fails.

A check that fails because the learner's code raised (a *crash*, as opposed to a wrong answer or
an exercise not written yet) is reported once, with the file and line that raised; the checks
after it that fail the same way say so in a line, and their hints are held back until the crash
is fixed, since they would only point elsewhere. A check reports a handler's failure with
`fail_invocation(inv)`, which carries the handler's own stack trace to the report.

A lab's optional *stretch goal* has checks of its own, marked `@pytest.mark.stretch`:
`check("hello")` leaves them out, `check("hello", stretch=True)` runs only them.

This module is also the pytest plugin (`-p lambdalab.course.checks`) that collects those results in
the subprocess; its hooks do nothing unless `LAMBDALAB_CHECK_RESULTS` names the output file.
"""

from __future__ import annotations

import html
import inspect
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from pluggy import HookimplMarker

from lambdalab.course.labs import find_root, lab_names
from lambdalab.runtime.errors import LambdaLabError
from lambdalab.runtime.sandbox import TASK_ROOT

TRACK_ENV = "LAMBDALAB_TRACK"
TRACKS = ("labs", "solutions")
DEFAULT_TRACK = "labs"
RESULTS_ENV = "LAMBDALAB_CHECK_RESULTS"
STRETCH_MARK = "stretch"  # the pytest mark of a stretch goal's checks (registered in tests/labs/conftest.py)
DEFAULT_TIMEOUT_S = 600.0
# Long enough for a failure's own explanation (a few lines), short enough to stay a report.
_MESSAGE_MAX = 1500
_MESSAGE_LINES = 12
# pytest's prefixes that tell a learner nothing: pytest.fail's, and a failed assert's.
_NOISE_PREFIXES = ("Failed: ", "AssertionError: ")
# Markers beside the emoji, for screens and fonts without them (and for screen readers).
PASS_MARK, FAIL_MARK = "✅ PASS", "❌ FAIL"
# A frame of a Python traceback as awslambdaric and `traceback` format it (a SyntaxError's too).
# pytest's own marker, without importing pytest into a notebook's kernel (pluggy is light).
pytest_hookimpl = HookimplMarker("pytest")
_FRAME = re.compile(r'File "(?P<path>[^"]+)",? [Ll]ine (?P<line>\d+)')


class UnknownLabError(LambdaLabError, LookupError):
    """No lab of that name, or it has no checks, or the track has no copy of it."""

    def __init__(self, message: str, labs: list[str]):
        self.labs = labs
        super().__init__(f"{message}. The labs are: {', '.join(labs) or '(none)'}")


@dataclass(frozen=True)
class CheckResult:
    """One check: did it pass, and if not, what to try and what went wrong."""

    name: str  # the test function, e.g. "test_greets_by_name"
    passed: bool
    hint: str = ""
    message: str = ""  # the failure's reason, e.g. "NotImplementedError: Exercise 'greeting' ..."
    title: str = ""  # the docstring's first line
    crashed: bool = False  # the learner's code raised (not a wrong answer, not an exercise left to do)
    location: str = ""  # where it raised, relative to the repository: "labs/visits/handler.py:23"


@dataclass(frozen=True)
class _Line:
    """One line of a check's entry in the report: its text, and whether it is a hint (rendered apart)."""

    text: str
    hint: bool = False


@dataclass
class CheckReport:
    """The outcome of one lab's checks on one track; prints (and renders in Jupyter) as a short report."""

    lab: str
    track: str
    results: list[CheckResult]
    output: str = field(default="", repr=False)  # pytest's own output, for when the report is not enough
    command: str = ""  # how to run the checks again, e.g. "lambdalab check hello"; default check('hello')
    stretch: bool = False  # the stretch goal's checks (else the exercise's)
    has_stretch: bool = False  # the lab has a stretch goal (run apart: check(lab, stretch=True))

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def summary(self) -> str:
        ok = sum(r.passed for r in self.results)
        which = ", stretch goal" if self.stretch else ""
        return f"Lab {self.lab!r} ({self.track} track){which}: {ok} of {len(self.results)} checks pass"

    @property
    def advice(self) -> str:
        if self.passed and self.stretch:
            return "The stretch goal is done too. Well done!"
        if self.passed:
            return (f"All checks pass. Well done! Optional: the stretch goal, with "
                    f"{self._command(stretch=True)}." if self.has_stretch else "All checks pass. Well done!")
        return f"Fix the first {FAIL_MARK}, then run {self._command(self.stretch)} again."

    def _command(self, stretch: bool) -> str:
        """How to run the exercise's checks (or the stretch goal's) again, as this report was run."""
        if self.command:  # the CLI's, e.g. "lambdalab check hello --track labs"
            return self.command.replace(" --stretch", "") + (" --stretch" if stretch else "")
        return f"check({self.lab!r}, stretch=True)" if stretch else f"check({self.lab!r})"

    def details(self) -> list[tuple[CheckResult, list[_Line]]]:
        """Each check with the lines shown under it: a crash once, with where; hints held back after it."""
        out: list[tuple[CheckResult, list[_Line]]] = []
        first_crash: CheckResult | None = None
        for r in self.results:
            lines: list[_Line] = []
            if r.passed:
                pass
            elif first_crash is not None and r.crashed and (r.message, r.location) == (
                    first_crash.message, first_crash.location):
                lines.append(_Line("The same error as above."))
            elif r.crashed:
                where = f" at {r.location}" if r.location else ""
                lines.append(_Line(f"Your code raised an error{where}:"))
                lines += [_Line(f"  {line}") for line in r.message.splitlines()]
                if first_crash is None:
                    first_crash = r
                    later = [x for x in self.results[self.results.index(r) + 1:] if not x.passed]
                    if later:
                        lines.append(_Line("The hints of the checks below are held back until this error is fixed."))
            else:
                if r.hint and first_crash is None:
                    lines.append(_Line(r.hint, hint=True))
                lines += [_Line(line) for line in r.message.splitlines()]
            out.append((r, lines))
        return out

    def __str__(self) -> str:
        lines = [self.summary]
        for r, details in self.details():
            lines.append(f"{PASS_MARK if r.passed else FAIL_MARK} {r.title or r.name}")
            lines += [f"   {'Hint: ' if d.hint else ''}{d.text}" for d in details]
        lines.append(self.advice)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        items = []
        for r, details in self.details():
            text = f"{PASS_MARK if r.passed else FAIL_MARK} <b>{html.escape(r.title or r.name)}</b>"
            hints = "".join(f"<br>&nbsp;&nbsp;&nbsp;&nbsp;Hint: {html.escape(d.text)}" for d in details if d.hint)
            body = "\n".join(d.text for d in details if not d.hint)
            text += hints + (f"<pre style=\"margin: 0.2em 0 0 2em; white-space: pre-wrap\">{html.escape(body)}</pre>"
                             if body else "")
            items.append(f"<li>{text}</li>")
        return (f"<div><p>{html.escape(self.summary)}</p>"
                f"<ul style=\"list-style: none; padding-left: 0\">{''.join(items)}</ul>"
                f"<p>{html.escape(self.advice)}</p></div>")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


# --- running the checks --------------------------------------------------------------------


def resolve_track(track: str | None = None) -> str:
    """`track`, else `$LAMBDALAB_TRACK`, else "labs"; a clear error for anything else."""
    chosen = track or os.environ.get(TRACK_ENV) or DEFAULT_TRACK
    if chosen not in TRACKS:
        source = "track" if track else TRACK_ENV
        raise ValueError(f"{source} is {chosen!r}; it must be one of: {', '.join(TRACKS)}")
    return chosen


def checked_labs(root: Path) -> list[str]:
    """The labs that have checks."""
    return [lab for lab in lab_names(root) if (root / "tests" / "labs" / f"test_{lab}.py").is_file()]


def checks_file(root: Path, lab: str) -> Path:
    """`tests/labs/test_<lab>.py`, or UnknownLabError saying which part of the lab is missing."""
    labs = checked_labs(root)
    if lab not in lab_names(root):
        raise UnknownLabError(f"there is no lab {lab!r} (no solutions/{lab}/)", labs)
    path = root / "tests" / "labs" / f"test_{lab}.py"
    if not path.is_file():
        raise UnknownLabError(f"lab {lab!r} has no checks (tests/labs/test_{lab}.py is missing)", labs)
    return path


def has_stretch_goal(test_file: Path) -> bool:
    """Whether a lab's checks include a stretch goal's (a test marked `@pytest.mark.stretch`)."""
    return f"pytest.mark.{STRETCH_MARK}" in test_file.read_text(encoding="utf-8")


def check(lab: str, track: str | None = None, *, stretch: bool = False, root: Path | None = None,
          timeout_s: float = DEFAULT_TIMEOUT_S) -> CheckReport:
    """Run lab `lab`'s checks against `track` ("labs" or "solutions"; default `$LAMBDALAB_TRACK`
    or "labs") and return the report. In a notebook: `check("hello")`; the lab's optional
    stretch goal: `check("hello", stretch=True)`."""
    root = root or find_root()
    track = resolve_track(track)
    test_file = checks_file(root, lab)
    has_stretch = has_stretch_goal(test_file)
    if stretch and not has_stretch:
        raise UnknownLabError(f"lab {lab!r} has no stretch goal (no check in tests/labs/test_{lab}.py is marked "
                              f"@pytest.mark.{STRETCH_MARK})", checked_labs(root))
    if not (root / track / lab).is_dir():
        hint = "; run `lambdalab labs build`" if track == "labs" else ""
        raise UnknownLabError(f"{track}/{lab}/ does not exist{hint}", checked_labs(root))
    fd, results_path = tempfile.mkstemp(prefix=f"lambdalab-check-{lab}-", suffix=".json")
    os.close(fd)
    try:
        selection = STRETCH_MARK if stretch else f"not {STRETCH_MARK}"
        returncode, output = _run_pytest(root, track, test_file, Path(results_path), timeout_s, selection)
        text = Path(results_path).read_text(encoding="utf-8")
        results = [CheckResult(**r) for r in json.loads(text)] if text else []
    finally:
        os.unlink(results_path)
    # pytest's exit code alone matters only when no check explains it (2 follows a failed import).
    if not results or (returncode not in (0, 1) and all(r.passed for r in results)):
        results.append(_runner_failure(returncode, output, test_file.relative_to(root)))
    return CheckReport(lab, track, results, output, stretch=stretch, has_stretch=has_stretch)


def _run_pytest(root: Path, track: str, test_file: Path, results: Path, timeout_s: float,
                selection: str) -> tuple[int | None, str]:
    """pytest's exit code (None on timeout) and output; `selection` is its -m expression."""
    # The caller's pytest settings (xdist workers, addopts) must not leak into the child run,
    # and installed plugins are not needed: nbval's import alone costs seconds (nbformat's schemas).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update({TRACK_ENV: track, "LAMBDALAB_ROOT": str(root), RESULTS_ENV: str(results),
                "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "lambdalab.course.checks",
           "-o", "addopts=", "-m", selection, "--rootdir", str(root), str(test_file)]
    # A session of its own, so a timeout can kill the checks' runtime workers too.
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
        return proc.returncode, output
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return None, output + f"\n(stopped after {timeout_s:g} s)"


def _runner_failure(returncode: int | None, output: str, test_file: Path) -> CheckResult:
    """A failed pseudo-check for when pytest itself did not run the checks through."""
    if returncode is None:
        title, message = "The checks finished in time", output.strip().splitlines()[-1]
    elif returncode == 5:
        title, message = "The checks were found", f"pytest found no tests in {test_file}"
    else:
        tail = [line for line in output.strip().splitlines() if line.strip()][-1:] or ["(no output)"]
        title, message = "The checks ran", f"pytest exited with code {returncode}: {tail[0]}"
    return CheckResult(name="pytest", passed=False, title=title, message=_shorten(message),
                       hint="Look at the report's .output for pytest's full output.")


# --- what a check calls when the learner's handler failed -----------------------------------


class HandlerError(Exception):
    """An invocation of the learner's handler failed: its error, and the frames of its stack trace."""

    def __init__(self, error_type: str, message: str, stack: list[str]):
        self.error_type, self.message, self.stack = error_type, message, stack
        super().__init__(f"{error_type}: {message}")


def fail_invocation(inv: Any) -> NoReturn:
    """Fail the running check with a failed `Invocation`'s own error (type, message, stack trace)."""
    error = inv.error or {}
    stack = error.get("stackTrace") or []
    raise HandlerError(str(error.get("errorType") or inv.error_type or "Error"), str(error.get("errorMessage", "")),
                        [str(frame) for frame in stack] if isinstance(stack, list) else [])


def is_exercise_to_do(message: str) -> bool:
    """The failure of a lab's untouched exercise (labs/ raises this until the learner writes it)."""
    return message.startswith("NotImplementedError: Exercise '")


# --- the pytest plugin (runs in the child) ---------------------------------------------------

_collected: dict[str, dict[str, Any]] = {}  # nodeid -> CheckResult fields, in collection order
_failed: set[str] = set()  # nodeids with a failed (or skipped) phase: the first one explains it
_explained: dict[str, dict[str, Any]] = {}  # nodeid -> message, crashed, location of its first failure


def _code_root() -> Path | None:
    """The checked track's directory (`<root>/<track>`), whose frames are the learner's code."""
    root = os.environ.get("LAMBDALAB_ROOT")
    return Path(root).resolve() / resolve_track() if root else None


def _learner_location(paths_and_lines: list[tuple[str, int]], lab: str | None = None) -> str:
    """The deepest frame in the learner's code as "labs/lab/file.py:LINE" ("" if none is).

    A handler's own frames name its package as Lambda mounts it (/var/task/...): that is `lab`'s folder."""
    code = _code_root()
    if code is None:
        return ""
    for path, line in reversed(paths_and_lines):
        if lab and path.startswith(TASK_ROOT + "/"):
            path = str(code / lab / path[len(TASK_ROOT) + 1:])
        try:
            relative = Path(path).resolve().relative_to(code.parent)
        except (ValueError, OSError):
            continue
        if relative.parts[:1] == (code.name,):
            return f"{relative.as_posix()}:{line}"
    return ""


def explain(exc: BaseException, frames: list[tuple[str, int]], lab: str | None = None) -> dict[str, Any]:
    """What a check's exception means to a learner: its message, and whether (and where) their code crashed."""
    if isinstance(exc, HandlerError):
        message = _shorten(f"{exc.error_type}: {exc.message}")
        stack = [(m["path"], int(m["line"])) for frame in exc.stack if (m := _FRAME.search(frame))]
        return {"message": message, "crashed": not is_exercise_to_do(message),
                "location": _learner_location(stack, lab)}
    location = _learner_location(frames)
    if location and not isinstance(exc, AssertionError):
        message = _shorten(f"{type(exc).__name__}: {exc}")
        return {"message": message, "crashed": not is_exercise_to_do(message), "location": location}
    return {}


@pytest_hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    outcome = yield
    if not os.environ.get(RESULTS_ENV) or call.excinfo is None or item.nodeid in _explained:
        return
    if outcome.get_result().failed:
        frames = [(str(entry.path), entry.lineno + 1) for entry in call.excinfo.traceback]
        lab = item.path.stem.removeprefix("test_")
        _explained[item.nodeid] = explain(call.excinfo.value, frames, lab)


def pytest_collection_finish(session: Any) -> None:
    if not os.environ.get(RESULTS_ENV):
        return
    for item in session.items:
        title, hint = parse_docstring(inspect.getdoc(getattr(item, "obj", None)) or "")
        _collected[item.nodeid] = {"name": item.name, "passed": False, "hint": hint,
                                   "message": "did not run", "title": title}


def pytest_collectreport(report: Any) -> None:
    if os.environ.get(RESULTS_ENV) and report.failed:
        _collected[report.nodeid or "collection"] = {
            "name": report.nodeid or "collection", "passed": False, "title": "The checks load",
            "hint": "The check file itself failed to import; see the report's .output.",
            "message": short_message(report.longrepr)}


def pytest_runtest_logreport(report: Any) -> None:
    entry = _collected.get(report.nodeid)
    if entry is None or report.nodeid in _failed:
        return
    if report.failed or report.skipped:
        _failed.add(report.nodeid)
        entry["passed"] = False
        entry["message"] = ("skipped: " if report.skipped else "") + short_message(report.longrepr)
        entry.update(_explained.get(report.nodeid, {}))
    elif report.when == "call":
        entry["passed"], entry["message"] = True, ""


def pytest_sessionfinish(session: Any) -> None:
    path = os.environ.get(RESULTS_ENV)
    if path:
        Path(path).write_text(json.dumps(list(_collected.values())), encoding="utf-8")


def parse_docstring(doc: str) -> tuple[str, str]:
    """(title, hint) of a check's docstring: its first line, and its `Hint:` paragraph."""
    lines = doc.strip().splitlines()
    title = lines[0].strip() if lines else ""
    hint: list[str] = []
    for line in lines[1:]:
        stripped = line.strip()
        if hint and not stripped:
            break
        if hint or stripped.startswith("Hint:"):
            hint.append(stripped.removeprefix("Hint:").strip())
    return title, " ".join(hint)


def short_message(longrepr: Any) -> str:
    """What went wrong, in the check's own words, without pytest's decoration (its assert rewriting)."""
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        return _shorten(str(longrepr[2]).removeprefix("Skipped: "))
    crash = getattr(longrepr, "reprcrash", None)
    if crash is None:  # a plain text report (a collection error): its last line is the error
        lines = [line for line in str(longrepr).strip().splitlines() if line.strip()]
        return _shorten(lines[-1].removeprefix("E").strip() if lines else "(no message)")
    text = crash.message.strip()
    for prefix in _NOISE_PREFIXES:
        text = text.removeprefix(prefix)
    # pytest appends its introspection ("assert 3 == 4", "+  where ...") to an assert's own message,
    # and indents the message's continuation lines by two spaces; a learner needs neither.
    lines = text.splitlines()
    end = next((i for i, line in enumerate(lines) if i and line.startswith("assert ")), len(lines))
    if end < len(lines):
        lines[1:end] = [line.removeprefix("  ") for line in lines[1:end]]
    return _shorten("\n".join(lines[:end]).strip() or "(no message)")


def _shorten(text: str) -> str:
    """At most _MESSAGE_LINES lines and _MESSAGE_MAX characters, saying when something was cut."""
    lines = text.splitlines()
    if len(lines) > _MESSAGE_LINES:
        text = "\n".join(lines[:_MESSAGE_LINES]) + f"\n… ({len(lines) - _MESSAGE_LINES} more lines)"
    return text if len(text) <= _MESSAGE_MAX else text[:_MESSAGE_MAX - 1] + "…"


__all__ = ["CheckReport", "CheckResult", "HandlerError", "UnknownLabError", "check", "fail_invocation"]
