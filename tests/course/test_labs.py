"""The lab machinery: solution markers, generating labs/ from solutions/ without clobbering a
learner's edits, the sync check, the check runner and its report, and the proof CI needs:
every lab's checks pass on solutions/ and fail, exercise by exercise, on the untouched labs/."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from lambdalab.cli import check as check_cli
from lambdalab.cli import labs as labs_cli
from lambdalab.course import checks, labs
from lambdalab.course.checks import CheckReport, CheckResult, UnknownLabError
from lambdalab.course.labs import Block, LabsError

ROOT = Path(__file__).resolve().parents[2]
REAL_LABS = labs.exercise_labs(ROOT)


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")


def run_cli(register, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lambdalab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


# --- markers ---------------------------------------------------------------------------------


def test_parse_blocks_names_indents_and_instructions():
    text = textwrap.dedent("""\
        def handler(event, context):
            # BEGIN SOLUTION greet

            # Say hello.
            #
            # Politely.
            value = 1
            # a comment after code is not an instruction
            # END SOLUTION
            # BEGIN SOLUTION
            return value
            # END SOLUTION
        # BEGIN SOLUTION
        X = 1
        # END SOLUTION greeter
        """).replace("# END SOLUTION greeter", "# END SOLUTION")
    blocks, problems = labs.parse_blocks(text, "solutions/x/mod.py")
    assert problems == []
    assert blocks == [
        Block("greet", "    ", 2, 9, ("Say hello.", "Politely.")),
        Block("handler", "    ", 10, 12, ()),  # unnamed: the enclosing function's name
        Block("mod", "", 13, 15, ()),  # unnamed at module level: the file's stem
    ]


def test_parse_blocks_end_may_repeat_the_exercise_name():
    blocks, problems = labs.parse_blocks("# BEGIN SOLUTION a\nx = 1\n# END SOLUTION a\n", "m.py")
    assert problems == [] and [b.exercise for b in blocks] == ["a"]


@pytest.mark.parametrize("text, expected", [
    ("x = 1\n# BEGIN SOLUTION\ny = 2\n",
     ["f.py:2: BEGIN SOLUTION has no matching END SOLUTION"]),
    ("x = 1\ny = 2\n# END SOLUTION\n",
     ["f.py:3: END SOLUTION without a BEGIN SOLUTION before it"]),
    ("# BEGIN SOLUTION a\n# BEGIN SOLUTION b\nx = 1\n# END SOLUTION\n# END SOLUTION\n",
     ["f.py:2: BEGIN SOLUTION inside the block opened at line 1 (solution blocks cannot nest)"]),
    ("# BEGIN SOLUTION a\n# BEGIN SOLUTION b\nx = 1\n# END SOLUTION\n",
     ["f.py:2: BEGIN SOLUTION inside the block opened at line 1 (solution blocks cannot nest)",
      "f.py:1: BEGIN SOLUTION has no matching END SOLUTION"]),
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n# END SOLUTION\n",
     ["f.py:4: END SOLUTION is indented differently from its BEGIN SOLUTION at line 2"]),
    ("# BEGIN SOLUTION two words\nx = 1\n# END SOLUTION\n",
     ["f.py:1: exercise name 'two words' after BEGIN SOLUTION must be one word of letters, digits, '_' or '-'",
      "f.py:3: END SOLUTION without a BEGIN SOLUTION before it"]),
    ("# BEGIN SOLUTION a\nx = 1\n# END SOLUTION b\n",
     ["f.py:3: END SOLUTION b closes exercise 'a' opened at line 1"]),
])
def test_parse_blocks_reports_bad_markers_with_file_and_line(text, expected):
    blocks, problems = labs.parse_blocks(text, "f.py")
    assert problems == expected
    assert blocks == [] or problems == []


def test_lookalike_comments_are_not_markers():
    text = "# BEGIN SOLUTIONS\n# the END SOLUTION marker\nx = 1\n"
    assert labs.parse_blocks(text, "f.py") == ([], [])


# --- build -----------------------------------------------------------------------------------

SAMPLE = '''\
#!/usr/bin/env python3
"""Demo."""

TOTAL = 0


def add(a, b):
    # BEGIN SOLUTION adding
    # Return the sum of "a" and b.
    # Use the + operator.
    return a + b
    # END SOLUTION


class Box:
    def size(self):
        # BEGIN SOLUTION
        return 3
        # END SOLUTION

# BEGIN SOLUTION
TOTAL = add(1, 2)
# END SOLUTION
'''

SAMPLE_LAB = '''\
#!/usr/bin/env python3
# Generated from solutions/demo/app.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check demo`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Demo."""

TOTAL = 0


def add(a, b):
    # TODO(adding): Return the sum of "a" and b.
    # Use the + operator.
    raise NotImplementedError("Exercise 'adding' in labs/demo/app.py: Return the sum of \\"a\\" and b. Use the + operator.")


class Box:
    def size(self):
        # TODO(size): write this part
        raise NotImplementedError("Exercise 'size' in labs/demo/app.py: write this part")

# TODO(app): write this part
raise NotImplementedError("Exercise 'app' in labs/demo/app.py: write this part")
'''  # noqa: E501 - what `labs build` writes, verbatim

BINARY = bytes(range(256))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write(tmp_path, {
        "solutions/demo/app.py": SAMPLE,
        "solutions/demo/data/blob.bin": BINARY,
        "solutions/demo/__pycache__/app.cpython-311.pyc": b"droppings",
        "solutions/README.md": "Reference solutions.\n",
        "solutions/other/handler.py": "def handler(event, context):\n    return 1\n",
        "solutions/other/zexercise.py": "def f():\n    # BEGIN SOLUTION\n    return 2\n    # END SOLUTION\n",
        "solutions/lesson99/demo.py": "def handler(event, context):\n    return 'demo'\n",  # no exercise: not copied
        "labs/README.md": "Your workspace.\n",
    })
    return tmp_path


def lab_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root / "labs").as_posix(): p.read_bytes()
            for p in sorted((root / "labs").rglob("*")) if p.is_file()}


def test_build_output_is_exact(repo):
    changed = labs.build(repo)
    labs_dir = repo / "labs"
    assert changed == [labs_dir / "demo/app.py", labs_dir / "demo/data/blob.bin", labs_dir / "other/handler.py",
                       labs_dir / "other/zexercise.py"]
    assert not (labs_dir / "lesson99").exists()  # a demo lab without exercises stays in solutions/
    assert (labs_dir / "demo/app.py").read_text(encoding="utf-8") == SAMPLE_LAB
    assert (labs_dir / "demo/data/blob.bin").read_bytes() == BINARY
    assert (labs_dir / "other/handler.py").read_text(encoding="utf-8").splitlines()[3:] == [
        "def handler(event, context):", "    return 1"]
    manifest = json.loads((labs_dir / labs.MANIFEST).read_text(encoding="utf-8"))
    assert sorted(manifest["files"]) == ["demo/app.py", "demo/data/blob.bin", "other/handler.py", "other/zexercise.py"]
    assert (labs_dir / "README.md").read_text() == "Your workspace.\n"  # top-level files are left alone
    assert not (labs_dir / "demo/__pycache__").exists()
    compile(SAMPLE_LAB, "app.py", "exec")


def test_generated_code_raises_the_exercise_message(repo):
    write(repo, {"solutions/demo/calc.py": """\
        def area(w, h):
            # BEGIN SOLUTION
            # Multiply.
            return w * h
            # END SOLUTION
        """})
    labs.build(repo)
    namespace: dict = {}
    exec(compile((repo / "labs/demo/calc.py").read_text(encoding="utf-8"), "calc.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r"^Exercise 'area' in labs/demo/calc.py: Multiply\.$"):
        namespace["area"](2, 3)


def test_build_is_idempotent(repo):
    labs.build(repo)
    before = lab_tree(repo)
    mtimes = {p: p.stat().st_mtime_ns for p in (repo / "labs").rglob("*")}
    assert labs.build(repo) == []
    assert lab_tree(repo) == before
    assert {p: p.stat().st_mtime_ns for p in (repo / "labs").rglob("*")} == mtimes
    assert labs.check(repo) == []


def test_build_follows_a_changed_solution_over_its_own_output(repo):
    labs.build(repo)
    # Code inside a block never reaches labs/; its instructions do.
    (repo / "solutions/demo/app.py").write_text(SAMPLE.replace("return 3", "return 4"))
    assert labs.build(repo) == []
    (repo / "solutions/demo/app.py").write_text(SAMPLE.replace("Use the + operator.", "Use +."))
    (repo / "solutions/demo/data/blob.bin").unlink()
    assert labs.build(repo) == [repo / "labs/demo/app.py", repo / "labs/demo/data/blob.bin"]
    assert not (repo / "labs/demo/data").exists()  # the emptied directory goes too
    assert labs.check(repo) == []


def test_build_refuses_to_clobber_edits(repo):
    labs.build(repo)
    edited = SAMPLE_LAB.replace('raise NotImplementedError("Exercise \'size\' in labs/demo/app.py: write this part")',
                                "return 3")
    (repo / "labs/demo/app.py").write_text(edited, encoding="utf-8")
    (repo / "labs/demo/notes.txt").write_text("my notes")
    (repo / "solutions/other/handler.py").write_text("def handler(event, context):\n    return 2\n")
    before = lab_tree(repo)
    with pytest.raises(LabsError) as err:
        labs.build(repo)
    assert err.value.problems == [
        "labs/demo/app.py: differs from what build last wrote (your edits?)",
        "labs/demo/notes.txt: has no source in solutions/ and build did not write it",
    ]
    assert "--force" in str(err.value)
    assert lab_tree(repo) == before  # nothing written, not even the unconflicted other/handler.py
    changed = labs.build(repo, force=True)
    assert changed == [repo / "labs/demo/app.py", repo / "labs/demo/notes.txt", repo / "labs/other/handler.py"]
    assert (repo / "labs/demo/app.py").read_text(encoding="utf-8") == SAMPLE_LAB
    assert not (repo / "labs/demo/notes.txt").exists()
    assert labs.check(repo) == []


def test_build_without_a_manifest_refuses_files_it_cannot_vouch_for(repo):
    labs.build(repo)
    (repo / "labs" / labs.MANIFEST).unlink()
    assert labs.build(repo) == []  # identical files need no vouching
    (repo / "labs/other/handler.py").write_text("# mine\n")
    with pytest.raises(LabsError, match="labs/other/handler.py: differs from what build last wrote"):
        labs.build(repo)


def test_build_refuses_bad_markers_and_writes_nothing(repo):
    write(repo, {"solutions/demo/bad.py": "def f():\n    # BEGIN SOLUTION\n    return 1\n"})
    with pytest.raises(LabsError) as err:
        labs.build(repo)
    assert err.value.problems == ["solutions/demo/bad.py:2: BEGIN SOLUTION has no matching END SOLUTION"]
    assert lab_tree(repo) == {"README.md": b"Your workspace.\n"}


def test_build_reports_code_that_does_not_compile(repo):
    write(repo, {
        "solutions/demo/syntax.py": "def f(:\n    pass\n",
        "solutions/demo/inline.py": "x = (\n    # BEGIN SOLUTION\n    1\n    # END SOLUTION\n    + 2)\n",
    })
    with pytest.raises(LabsError) as err:
        labs.build(repo)
    assert [p.split(": ")[0] for p in err.value.problems] == [
        "labs/demo/inline.py (generated from solutions/demo/inline.py):6",
        "solutions/demo/syntax.py:1",
    ]


def test_bad_manifest_is_a_clear_error(repo):
    labs.build(repo)
    (repo / "labs" / labs.MANIFEST).write_text("[]")
    with pytest.raises(LabsError, match=r"labs/\.generated\.json is not a build manifest"):
        labs.build(repo)


# --- check -----------------------------------------------------------------------------------


def test_check_finds_missing_stale_edited_and_extra_files(repo):
    assert labs.check(repo) == [
        "labs/demo/app.py: missing (generated from solutions/demo/app.py)",
        "labs/demo/data/blob.bin: missing (generated from solutions/demo/data/blob.bin)",
        "labs/other/handler.py: missing (generated from solutions/other/handler.py)",
        "labs/other/zexercise.py: missing (generated from solutions/other/zexercise.py)",
    ]
    labs.build(repo)
    (repo / "solutions/demo/app.py").write_text(SAMPLE.replace("Use the + operator.", "Use +."))
    (repo / "labs/other/handler.py").write_text("# edited\n")
    (repo / "labs/other/__pycache__").mkdir()
    (repo / "labs/other/__pycache__/handler.cpython-311.pyc").write_bytes(b"ignored")
    (repo / "labs/gone/old.py").parent.mkdir()
    (repo / "labs/gone/old.py").write_text("x = 1\n")
    assert labs.check(repo) == [
        "labs/demo/app.py: stale: solutions/demo/app.py changed since the last build",
        "labs/other/handler.py: differs from what solutions/other/handler.py generates (edited by hand?)",
        "labs/gone/old.py: extra: there is no solutions/gone/old.py",
    ]


def test_check_notices_a_stale_manifest(repo):
    labs.build(repo)
    (repo / "labs" / labs.MANIFEST).write_text(json.dumps({"files": {}}))
    assert labs.check(repo) == ["labs/.generated.json: does not record the current output"]


def test_check_reports_marker_problems_without_calling_the_lab_extra(repo):
    labs.build(repo)
    (repo / "solutions/demo/app.py").write_text(SAMPLE + "# END SOLUTION\n")
    assert labs.check(repo) == ["solutions/demo/app.py:24: END SOLUTION without a BEGIN SOLUTION before it"]


def test_labs_cli_build_and_check(repo, monkeypatch, capsys):
    monkeypatch.setenv("LAMBDALAB_ROOT", str(repo))
    assert run_cli(labs_cli.register, ["labs", "check"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("labs/ is out of date; run `lambdalab labs build`:\n  labs/demo/app.py: missing")
    assert run_cli(labs_cli.register, ["labs", "build"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "wrote labs/demo/app.py", "wrote labs/demo/data/blob.bin", "wrote labs/other/handler.py",
        "wrote labs/other/zexercise.py", "labs/ is up to date (4 files)"]
    assert run_cli(labs_cli.register, ["labs", "check"]) == 0
    assert capsys.readouterr().out == "labs/ is up to date (4 files)\n"
    (repo / "labs/other/handler.py").write_text("# edited\n")
    assert run_cli(labs_cli.register, ["labs", "build"]) == 1
    assert "labs/other/handler.py: differs from what build last wrote" in capsys.readouterr().out
    assert run_cli(labs_cli.register, ["labs", "build", "--force"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "wrote labs/other/handler.py"


def test_the_repos_labs_are_up_to_date():
    assert REAL_LABS, "solutions/ has no labs"
    assert labs.check(ROOT) == []


# --- the check runner and its report --------------------------------------------------------

GREET_SOLUTION = '''\
def greet(name):
    # BEGIN SOLUTION greet
    # Return "Hi, <name>".
    return f"Hi, {name}"
    # END SOLUTION


def shout(text):
    # BEGIN SOLUTION shout
    return text.upper()
    # END SOLUTION
'''

GREET_CHECKS = '''\
import importlib.util

import pytest


@pytest.fixture
def greet(lab_dir):
    spec = importlib.util.spec_from_file_location("greet_mod", lab_dir("greet") / "greet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_greets(greet):
    """Greets by name.

    Hint: use an f-string,
    like f"Hi, {name}".

    More notes that are not the hint.
    """
    assert greet.greet("Ada") == "Hi, Ada"


def test_shouts(greet):
    """Shouts.

    Hint: str.upper
    """
    assert greet.shout("hey") == "HEY", "shout('hey') should be 'HEY'"


def test_track(track):
    assert track in ("labs", "solutions")
'''


@pytest.fixture
def greet_repo(tmp_path: Path) -> Path:
    write(tmp_path, {
        "solutions/greet/greet.py": GREET_SOLUTION,
        "solutions/nochecks/mod.py": "x = 1\n",
        "tests/labs/test_greet.py": GREET_CHECKS,
    })
    shutil.copy(ROOT / "tests/labs/conftest.py", tmp_path / "tests/labs/conftest.py")
    labs.build(tmp_path)
    return tmp_path


def test_check_passes_on_solutions(greet_repo):
    report = checks.check("greet", track="solutions", root=greet_repo)
    assert report.passed, report.output
    assert [(r.name, r.passed, r.title, r.hint, r.message) for r in report.results] == [
        ("test_greets", True, "Greets by name.", "use an f-string, like f\"Hi, {name}\".", ""),
        ("test_shouts", True, "Shouts.", "str.upper", ""),
        ("test_track", True, "", "", ""),
    ]


def test_check_fails_on_untouched_labs_with_the_exercise_message(greet_repo):
    report = checks.check("greet", track="labs", root=greet_repo)
    assert not report.passed
    assert [(r.name, r.passed, r.message) for r in report.results] == [
        ("test_greets", False, "NotImplementedError: Exercise 'greet' in labs/greet/greet.py: Return \"Hi, <name>\"."),
        ("test_shouts", False, "NotImplementedError: Exercise 'shout' in labs/greet/greet.py: write this part"),
        ("test_track", True, ""),
    ]
    text = str(report)
    assert text.splitlines() == [
        "Lab 'greet' (labs track): 1 of 3 checks pass",
        "❌ FAIL Greets by name.",
        "   Hint: use an f-string, like f\"Hi, {name}\".",
        "   NotImplementedError: Exercise 'greet' in labs/greet/greet.py: Return \"Hi, <name>\".",
        "❌ FAIL Shouts.",
        "   Hint: str.upper",
        "   NotImplementedError: Exercise 'shout' in labs/greet/greet.py: write this part",
        "✅ PASS test_track",
        "Fix the first ❌ FAIL, then run check('greet') again.",
    ]
    assert not any(r.crashed for r in report.results)  # an exercise left to do is not a crash


def test_check_reads_the_track_from_the_environment(greet_repo, monkeypatch):
    monkeypatch.setenv("LAMBDALAB_TRACK", "solutions")
    assert checks.check("greet", root=greet_repo).track == "solutions"
    monkeypatch.delenv("LAMBDALAB_TRACK")
    assert checks.check("greet", root=greet_repo).track == "labs"


def test_check_shows_an_assertion_message(greet_repo):
    (greet_repo / "labs/greet/greet.py").write_text(
        GREET_SOLUTION.replace("text.upper()", "text.lower()"), encoding="utf-8")
    report = checks.check("greet", track="labs", root=greet_repo)
    assert [r.passed for r in report.results] == [True, False, True]
    assert report.results[1].message == "shout('hey') should be 'HEY'"


def test_check_shows_the_whole_reason_without_pytests_introspection(greet_repo):
    reason = "the table should hold:\n" + "\n".join(f"  row {n}: {'x' * 60}" for n in range(8))
    write(greet_repo, {"tests/labs/test_greet.py": f"""\
        def test_rows():
            assert 1 == 2, {reason!r}
        """})
    report = checks.check("greet", track="labs", root=greet_repo)
    assert report.results[0].message == reason  # 9 lines, 600 characters: all of it, and no "assert 1 == 2"
    assert str(report).splitlines()[2:11] == [f"   {line}" for line in reason.splitlines()]


THIRD_CHECK = '''

def test_third(greet):
    """Third.

    Hint: not shown while the crash stands
    """
    assert False, "third is wrong"
'''


def test_a_crash_in_lab_code_is_reported_once_with_its_file_and_line_and_holds_later_hints_back(greet_repo):
    (greet_repo / "labs/greet/greet.py").write_text(
        'def greet(name):\n    return f"Hi, {nmae}"\n\n\ndef shout(text):\n    return greet(text).upper()\n')
    write(greet_repo, {"tests/labs/test_greet.py": GREET_CHECKS + THIRD_CHECK})
    report = checks.check("greet", track="labs", root=greet_repo)
    crashes = [(r.crashed, r.location) for r in report.results]
    assert crashes == [(True, "labs/greet/greet.py:2"), (True, "labs/greet/greet.py:2"), (False, ""), (False, "")]
    assert str(report).splitlines() == [
        "Lab 'greet' (labs track): 1 of 4 checks pass",
        "❌ FAIL Greets by name.",
        "   Your code raised an error at labs/greet/greet.py:2:",
        "     NameError: name 'nmae' is not defined",
        "   The hints of the checks below are held back until this error is fixed.",
        "❌ FAIL Shouts.",
        "   The same error as above.",
        "✅ PASS test_track",
        "❌ FAIL Third.",
        "   third is wrong",
        "Fix the first ❌ FAIL, then run check('greet') again.",
    ]


HANDLER_CHECK = '''\
from lambdalab.runtime.config import FunctionConfig


def test_invokes(runtime, invoke, lab_dir):
    """Answers.

    Hint: not shown: the crash explains it
    """
    runtime.deploy(FunctionConfig(name="h", code_dir=lab_dir("greet"), handler="handler.lambda_handler"))
    invoke("h", {})
'''


def test_a_crashing_handler_is_reported_with_the_line_of_its_stack_trace(greet_repo):
    """A failed invocation's error payload carries the handler's stackTrace
    (https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html): the report names its frame."""
    write(greet_repo, {"labs/greet/handler.py": 'def lambda_handler(event, context):\n    return {"hi": nmae}\n',
                       "tests/labs/test_greet.py": HANDLER_CHECK})
    report = checks.check("greet", track="labs", root=greet_repo)
    (result,) = report.results
    assert (result.crashed, result.location, result.message) == (
        True, "labs/greet/handler.py:2", "NameError: name 'nmae' is not defined"), report.output
    assert "Hint" not in str(report)


def test_check_reports_checks_that_cannot_load(greet_repo):
    (greet_repo / "tests/labs/test_greet.py").write_text("import no_such_module_here\n")
    report = checks.check("greet", track="solutions", root=greet_repo)
    assert not report.passed
    assert [(r.title, r.message) for r in report.results] == [
        ("The checks load", "ModuleNotFoundError: No module named 'no_such_module_here'")]


def test_check_reports_a_file_without_checks(greet_repo):
    (greet_repo / "tests/labs/test_greet.py").write_text("x = 1\n")
    report = checks.check("greet", track="solutions", root=greet_repo)
    assert [(r.passed, r.message) for r in report.results] == [
        (False, "pytest found no tests in tests/labs/test_greet.py")]


def test_check_stops_checks_that_hang_and_their_processes(greet_repo):
    pid_file = greet_repo / "child.pid"
    write(greet_repo, {"tests/labs/test_greet.py": f"""\
        import subprocess, time
        from pathlib import Path

        def test_sleeps():
            child = subprocess.Popen(["sleep", "60"])
            Path({str(pid_file)!r}).write_text(str(child.pid))
            time.sleep(60)
        """})
    report = checks.check("greet", track="solutions", root=greet_repo, timeout_s=2)
    assert [(r.title, r.passed, r.message) for r in report.results] == [
        ("The checks finished in time", False, "(stopped after 2 s)")]
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "the check's child process outlived the timeout"


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for a parent to reap it."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_check_names_unknown_labs_and_missing_parts(greet_repo):
    with pytest.raises(UnknownLabError, match=r"there is no lab 'nope' \(no solutions/nope/\)\. The labs are: greet$"):
        checks.check("nope", root=greet_repo)
    with pytest.raises(UnknownLabError,
                       match=r"lab 'nochecks' has no checks \(tests/labs/test_nochecks.py is missing\)"):
        checks.check("nochecks", root=greet_repo)
    shutil.rmtree(greet_repo / "labs/greet")
    with pytest.raises(UnknownLabError, match=r"labs/greet/ does not exist; run `lambdalab labs build`"):
        checks.check("greet", track="labs", root=greet_repo)
    with pytest.raises(ValueError, match=r"track is 'lab'; it must be one of: labs, solutions"):
        checks.check("greet", track="lab", root=greet_repo)


def test_check_cli_exit_codes(greet_repo, monkeypatch, capsys):
    monkeypatch.setenv("LAMBDALAB_ROOT", str(greet_repo))
    assert run_cli(check_cli.register, ["check", "greet", "--track", "solutions"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "All checks pass. Well done!"
    assert run_cli(check_cli.register, ["check", "greet", "--track", "labs"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("Lab 'greet' (labs track): 1 of 3 checks pass\n")
    # In a shell the advice names the shell command, not the notebook's check('greet').
    assert out.splitlines()[-1] == "Fix the first ❌ FAIL, then run lambdalab check greet --track labs again."
    assert run_cli(check_cli.register, ["check", "nope"]) == 2
    assert capsys.readouterr().err == (
        "lambdalab check: there is no lab 'nope' (no solutions/nope/). The labs are: greet\n")


def test_report_html_is_escaped_and_hides_hints_of_passing_checks():
    report = CheckReport("x", "labs", [
        CheckResult("test_a", True, hint="not shown", title="Returns <b>"),
        CheckResult("test_b", False, hint="use a & b", message="Error: <oops>", title="Adds"),
    ])
    assert report._repr_html_() == (
        "<div><p>Lab &#x27;x&#x27; (labs track): 1 of 2 checks pass</p>"
        '<ul style="list-style: none; padding-left: 0">'
        "<li>✅ PASS <b>Returns &lt;b&gt;</b></li>"
        "<li>❌ FAIL <b>Adds</b><br>&nbsp;&nbsp;&nbsp;&nbsp;Hint: use a &amp; b"
        '<pre style="margin: 0.2em 0 0 2em; white-space: pre-wrap">Error: &lt;oops&gt;</pre></li></ul>'
        "<p>Fix the first ❌ FAIL, then run check(&#x27;x&#x27;) again.</p></div>")
    assert "not shown" not in str(report)
    assert not CheckReport("x", "labs", []).passed  # no checks ran: nothing passed


# --- every real lab: solutions pass, untouched labs fail --------------------------------------


def test_every_exercise_lab_has_checks():
    assert REAL_LABS, "no lab with solution markers found"
    missing = [lab for lab in REAL_LABS if not (ROOT / "tests" / "labs" / f"test_{lab}.py").is_file()]
    assert missing == [], f"labs without tests/labs/test_<lab>.py: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("lab", REAL_LABS)
def test_lab_checks_pass_on_solutions(lab):
    report = checks.check(lab, track="solutions", root=ROOT)
    assert report.results and report.passed, f"{report}\n\n{report.output}"


@pytest.mark.slow
@pytest.mark.parametrize("lab", REAL_LABS)
def test_lab_checks_fail_on_untouched_labs(lab):
    assert labs.check(ROOT) == [], "labs/ must be the untouched build output"
    report = checks.check(lab, track="labs", root=ROOT)
    assert report.results, report.output
    for result in report.results:
        assert not result.passed, f"{result.name} passes on the untouched lab"
        assert result.message.startswith("NotImplementedError: Exercise '"), f"{result.name}: {result.message}"
        assert f" in labs/{lab}/" in result.message, result.message
        assert result.title and result.hint, f"{result.name} needs a docstring title and a Hint: line"


def test_load_module_imports_the_file_afresh_and_registers_it(tmp_path):
    path = tmp_path / "choose.py"
    path.write_text("from dataclasses import dataclass\n\n@dataclass\nclass Pick:\n    mb: int = 128\n")
    module = labs.load_module(path, "lab_test_choose")
    assert module.Pick().mb == 128  # dataclasses look their module up in sys.modules
    path.write_text("from dataclasses import dataclass\n\n@dataclass\nclass Pick:\n    mb: int = 1024\n")
    assert labs.load_module(path, "lab_test_choose").Pick().mb == 1024
    with pytest.raises(FileNotFoundError, match="missing.py does not exist"):
        labs.load_module(tmp_path / "missing.py")


def test_load_module_runs_a_same_length_edit_saved_within_the_same_second(tmp_path, monkeypatch):
    """A .pyc in __pycache__ is trusted when size and whole-second mtime match; a learner's quick
    one-character fix (same length, same second) must still run. Learners write bytecode (CI's
    environment may set PYTHONDONTWRITEBYTECODE, which hid this)."""
    import os

    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = tmp_path / "answer.py"
    path.write_text("VALUE = 1\n")
    stamp = path.stat().st_mtime_ns
    assert labs.load_module(path).VALUE == 1
    path.write_text("VALUE = 2\n")
    os.utime(path, ns=(stamp, stamp))
    assert labs.load_module(path).VALUE == 2


# --- stretch goals: checks of their own, run apart ----------------------------------------------

STRETCH_CHECK = '''

@pytest.mark.stretch
def test_greets_twice(greet):
    """Greets twice.

    Hint: call greet twice.
    """
    assert greet.greet("Ada") + " " + greet.greet("Ada") == "Hi, Ada Hi, Ada"
'''


def test_a_stretch_goal_is_left_out_of_the_checks_and_run_on_its_own(greet_repo, monkeypatch, capsys):
    checks_file = greet_repo / "tests/labs/test_greet.py"
    checks_file.write_text(checks_file.read_text() + STRETCH_CHECK)
    report = checks.check("greet", track="solutions", root=greet_repo)
    assert [r.name for r in report.results] == ["test_greets", "test_shouts", "test_track"]
    assert report.passed and report.has_stretch
    assert report.advice == "All checks pass. Well done! Optional: the stretch goal, with check('greet', stretch=True)."
    stretch = checks.check("greet", track="solutions", stretch=True, root=greet_repo)
    assert [(r.name, r.passed) for r in stretch.results] == [("test_greets_twice", True)]
    assert stretch.summary == "Lab 'greet' (solutions track), stretch goal: 1 of 1 checks pass"
    untouched = checks.check("greet", track="labs", stretch=True, root=greet_repo)
    assert [(r.name, r.passed) for r in untouched.results] == [("test_greets_twice", False)]
    assert untouched.advice == "Fix the first ❌ FAIL, then run check('greet', stretch=True) again."
    monkeypatch.setenv("LAMBDALAB_ROOT", str(greet_repo))
    assert run_cli(check_cli.register, ["check", "greet", "--track", "labs", "--stretch"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == \
        "Fix the first ❌ FAIL, then run lambdalab check greet --track labs --stretch again."


def test_a_lab_without_a_stretch_goal_says_so(greet_repo):
    with pytest.raises(checks.UnknownLabError, match="lab 'greet' has no stretch goal"):
        checks.check("greet", track="solutions", stretch=True, root=greet_repo)
    assert not checks.check("greet", track="solutions", root=greet_repo).has_stretch


STRETCH_LABS = [lab for lab in REAL_LABS if checks.has_stretch_goal(ROOT / "tests" / "labs" / f"test_{lab}.py")]


@pytest.mark.slow
@pytest.mark.parametrize("lab", STRETCH_LABS)
def test_stretch_goals_pass_on_solutions_and_fail_on_untouched_labs(lab):
    solved = checks.check(lab, track="solutions", stretch=True, root=ROOT)
    assert solved.results and solved.passed, f"{solved}\n\n{solved.output}"
    untouched = checks.check(lab, track="labs", stretch=True, root=ROOT)
    assert untouched.results and not any(r.passed for r in untouched.results), str(untouched)
    assert all(r.title.startswith("Stretch goal: ") and r.hint for r in untouched.results), str(untouched)
