"""Project-level invariants: the conda environment matches pyproject, notebooks are committed
clean, and the Makefile, CI script and README keep the two commands a learner relies on."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself depends on tomli below 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent

# conda-forge names that differ from the PyPI name of the same package.
CONDA_TO_PIP = {"matplotlib-base": "matplotlib"}
# In environment.yml but not in pyproject: the interpreter, the installer, a system binary.
CONDA_ONLY = {"python", "pip", "pgbouncer"}


# --- environment.yml vs pyproject.toml -------------------------------------------------------


def normalise(name: str) -> str:
    """PEP 503-style name: lowercase, `_`/`.` runs become `-`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(text: str) -> tuple[str, str]:
    """(normalised name, version specifier) of a pip or simple conda requirement; extras and
    markers are dropped. Raises ValueError naming the text when it is not a requirement."""
    try:
        req = Requirement(text)
    except Exception as exc:
        raise ValueError(f"not a requirement: {text!r} ({exc})") from exc
    name = normalise(req.name)
    return CONDA_TO_PIP.get(name, name), str(req.specifier)


def pyproject_requirements(pyproject: dict) -> dict[str, str]:
    """name -> specifier for the dependencies plus the test extra."""
    project = pyproject["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["test"]
    return dict(parse_requirement(line) for line in lines)


def environment_requirements(env: dict) -> dict[str, set[str]]:
    """name -> specifiers from environment.yml (conda and pip sections), without the
    conda-only packages and the editable install of the project itself."""
    found: dict[str, set[str]] = {}
    lines: list[str] = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            lines += [line for line in dep["pip"] if not line.startswith("-e ")]
        else:
            lines.append(dep)
    for line in lines:
        name, spec = parse_requirement(line)
        if name not in CONDA_ONLY:
            found.setdefault(name, set()).add(spec)
    return found


def test_parse_requirement_strips_extras_markers_and_maps_conda_names() -> None:
    assert parse_requirement("psycopg[binary]>=3.1,<4") == ("psycopg", "<4,>=3.1")
    assert parse_requirement("awslambdaric>=3.0,<5; sys_platform == 'linux'")[0] == "awslambdaric"
    assert parse_requirement("Pytest_XDist>=3.5") == ("pytest-xdist", ">=3.5")
    assert parse_requirement("matplotlib-base>=3.8,<4") == ("matplotlib", "<4,>=3.8")
    with pytest.raises(ValueError, match="not a requirement"):
        parse_requirement("-e .")


def test_environment_yml_names_the_same_packages_as_pyproject() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "serverless-workbook"
    assert "conda-forge" in env["channels"]
    wanted = pyproject_requirements(pyproject)
    have = environment_requirements(env)
    assert sorted(have) == sorted(wanted), (
        f"only in environment.yml: {sorted(set(have) - set(wanted))}; "
        f"only in pyproject.toml: {sorted(set(wanted) - set(have))}"
    )
    mismatched = {name: (sorted(specs), wanted[name]) for name, specs in have.items() if specs != {wanted[name]}}
    assert not mismatched, f"version ranges differ (environment.yml, pyproject): {mismatched}"


def test_environment_yml_installs_the_project_and_the_conda_only_tools() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [parse_requirement(d)[0] for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {"python", "pip", "pgbouncer"} <= set(conda)
    assert "-e ." in pip
    python = [parse_requirement(d)[1] for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert python == [">=3.10"]


# --- notebook hygiene -------------------------------------------------------------------------


def notebook_problems(path: Path) -> list[str]:
    """Everything wrong with a committed notebook, as readable sentences (empty list: clean)."""
    try:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    except Exception as exc:  # nbformat raises several types for unreadable JSON
        return [f"{path.name}: cannot be read as a notebook ({exc})"]
    if nb.get("nbformat") != 4:
        return [f"{path.name}: nbformat {nb.get('nbformat')}, expected 4"]
    # nbformat 4.5 requires cell ids; read from the file, since nbformat fills missing ones in silently.
    raw_cells = json.loads(path.read_text())["cells"]
    problems = [f"{path.name}: cell {index} has no id" for index, cell in enumerate(raw_cells)
                if nb.get("nbformat_minor", 0) >= 5 and not cell.get("id")]
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        problems.append(f"{path.name}: not a valid nbformat v4 notebook ({exc.message})")
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"{path.name}: cell {index} has outputs (clear them before committing)")
        if cell.get("execution_count") is not None:
            problems.append(f"{path.name}: cell {index} has execution_count {cell.execution_count}")
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    if kernel != "python3":
        problems.append(f"{path.name}: kernelspec name is {kernel!r}, expected 'python3'")
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "markdown" or not first.source.startswith("# "):
        problems.append(f"{path.name}: first cell must be markdown starting with a '# ' title")
    return problems


def _write_notebook(path: Path, cells: list[dict], kernel: str = "python3") -> Path:
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": kernel, "display_name": "Python 3", "language": "python"}},
        "cells": cells,
    }
    path.write_text(json.dumps(nb))
    return path


def _markdown(source: str, cell_id: str = "md") -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": source}


def _code(source: str, cell_id: str = "code", count: int | None = None, outputs: list | None = None) -> dict:
    return {
        "cell_type": "code", "id": cell_id, "metadata": {}, "source": source,
        "execution_count": count, "outputs": outputs or [],
    }


def test_notebook_problems_accepts_a_clean_notebook(tmp_path: Path) -> None:
    good = _write_notebook(tmp_path / "good.ipynb", [_markdown("# 00 Welcome\n\nHi."), _code("1 + 1")])
    assert notebook_problems(good) == []


def test_notebook_problems_names_each_fault(tmp_path: Path) -> None:
    output = {"output_type": "execute_result", "execution_count": 3, "metadata": {}, "data": {"text/plain": "2"}}
    bad = _write_notebook(
        tmp_path / "bad.ipynb",
        [_code("1 + 1", "c1", count=3, outputs=[output]), _markdown("no title", "m1"),
         {k: v for k, v in _markdown("no id").items() if k != "id"}],
        kernel="conda-env-x",
    )
    text = "\n".join(notebook_problems(bad))
    assert "cell 2 has no id" in text
    assert "cell 0 has outputs" in text
    assert "cell 0 has execution_count 3" in text
    assert "kernelspec name is 'conda-env-x'" in text
    assert "first cell must be markdown" in text


def test_notebook_problems_reports_invalid_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    assert "cannot be read" in notebook_problems(broken)[0]
    off_schema = _write_notebook(tmp_path / "schema.ipynb", [{**_markdown("# T"), "outputs": []}])
    assert [p for p in notebook_problems(off_schema) if "not a valid nbformat v4" in p]
    old = tmp_path / "v3.ipynb"
    old.write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}))
    assert notebook_problems(old) == ["v3.ipynb: nbformat 3, expected 4"]


def test_committed_notebooks_are_clean() -> None:
    # One test over all notebooks (not parametrised) so an empty notebooks/ is not a skip.
    problems = [p for path in sorted((ROOT / "notebooks").glob("*.ipynb")) for p in notebook_problems(path)]
    assert not problems, "\n".join(problems)


# --- what notebooks import ---------------------------------------------------------------------

# The modules a notebook may import from: the package's top level, the course and its lessons, the
# local cloud, and process inspection. The rest of lambdalab (runtime internals, the cloud's seams,
# _util) is machinery that a lesson's module re-exports when a notebook needs a piece of it.
PUBLIC_MODULES = ("lambdalab", "lambdalab.build", "lambdalab.course", "lambdalab.course.*",
                  "lambdalab.cloud.local_cloud", "lambdalab.runtime.processes")


def _is_public(module: str) -> bool:
    return any(fnmatch.fnmatchcase(module, pattern) for pattern in PUBLIC_MODULES)


def import_problems(source: str, where: str) -> list[str]:
    """Every import of lambdalab in one code cell that reaches past the public modules."""
    # IPython magics and shell escapes are not Python; nothing is imported on those lines.
    python = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    problems = []
    for node in ast.walk(ast.parse(python)):
        if isinstance(node, ast.Import):
            imported = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        for module, name in imported:
            if module.split(".")[0] != "lambdalab":
                continue
            if not _is_public(module):
                problems.append(f"{where}: imports from {module}, which is not public "
                                f"(public: {', '.join(PUBLIC_MODULES)})")
            if name is not None and name.startswith("_"):
                problems.append(f"{where}: imports the private name {name} from {module}")
    return problems


def test_import_problems_names_private_names_and_internal_modules() -> None:
    cell = ("%matplotlib inline\nfrom lambdalab import LocalCloud, check\n"
            "from lambdalab.course.lessons import thumbnails\nfrom lambdalab.course.plots import _time_unit\n"
            "from lambdalab.runtime.cpu import vcpus_for\nimport lambdalab._util.stats\nimport json\n")
    assert import_problems(cell, "nb cell 1") == [
        "nb cell 1: imports the private name _time_unit from lambdalab.course.plots",
        "nb cell 1: imports from lambdalab.runtime.cpu, which is not public "
        "(public: " + ", ".join(PUBLIC_MODULES) + ")",
        "nb cell 1: imports from lambdalab._util.stats, which is not public "
        "(public: " + ", ".join(PUBLIC_MODULES) + ")",
    ]
    assert import_problems("from lambdalab.cloud.local_cloud import LocalCloud\n", "nb") == []
    assert import_problems("from lambdalab import _util\n", "nb") == [
        "nb: imports the private name _util from lambdalab"]


def test_notebooks_import_only_public_names_of_public_modules() -> None:
    problems = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for index, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "code":
                problems += import_problems("".join(cell["source"]), f"{path.name} cell {index}")
    assert not problems, "\n".join(problems)


# --- Makefile, CI script, README --------------------------------------------------------------


def make_targets(makefile_text: str) -> set[str]:
    """Names of explicit rule targets (`name:` at line start, not `:=` assignments)."""
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", makefile_text, flags=re.MULTILINE))


def test_make_targets_reads_rules_not_assignments() -> None:
    text = "VENV := .venv\nlab: setup ## open\n\t@echo lab\ntest-x:\n# course: no\n"
    assert make_targets(text) == {"lab", "test-x"}


def test_makefile_has_the_course_targets() -> None:
    targets = make_targets((ROOT / "Makefile").read_text())
    missing = {"help", "setup", "lab", "test", "bench", "course", "clean", "distclean"} - targets
    assert not missing, f"Makefile lacks targets: {sorted(missing)}"


def test_ci_runs_make_test() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    commands = [line.split("#", 1)[0] for line in script.splitlines()]
    assert script.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in script
    assert any(re.search(r"\bmake test\b", line) for line in commands), ".ci/run never calls `make test`"


def test_readme_shows_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    for command in ("make lab", "make test"):
        assert command in readme, f"README.md does not mention `{command}`"


def test_supported_pythons_agree_in_pyproject_ci_and_readme() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    prefix = "Programming Language :: Python :: 3."
    classified = sorted((c.removeprefix("Programming Language :: Python :: ") for c in project["classifiers"]
                         if c.startswith(prefix) and c[len(prefix):].isdigit()), key=lambda v: int(v.split(".")[1]))
    assert project["requires-python"] == f">={classified[0]}"
    ci = re.search(r'^SUPPORTED="([^"]+)"', (ROOT / ".ci" / "run").read_text(), flags=re.MULTILINE)
    assert ci and ci.group(1).split() == classified, ".ci/run's SUPPORTED differs from pyproject's classifiers"
    readme = (ROOT / "README.md").read_text()
    assert f"Python {classified[0]} to" in readme and classified[-1] in readme


# --- the layers of lambdalab (ARCHITECTURE.md) ------------------------------------------------


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's contracts from `root`'s pyproject.toml, over the `lambdalab` found in `root`."""
    import os

    env = {**os.environ, "PYTHONPATH": str(root)}  # before site-packages: this tree's lambdalab wins
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_import_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("module, violation, contract", [
    ("runtime/config.py", "import lambdalab.cloud.local_cloud", "Layers"),
    ("runtime/records.py", "import moto", "never import moto"),
    ("cloud/loops.py", "from lambdalab.course import plots", "Layers"),
])
def test_a_layer_violation_breaks_a_contract(tmp_path: Path, module: str, violation: str, contract: str) -> None:
    """The contracts bite: the same tree with one forbidden import fails `make lint`."""
    import shutil

    shutil.copytree(ROOT / "lambdalab", tmp_path / "lambdalab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "lambdalab" / module
    target.write_text(target.read_text() + f"\n{violation}\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), result.stdout[-3000:]
