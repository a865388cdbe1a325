"""Build a deployment package the way `sam build` does: code + `requirements.txt` installed beside it, zipped.

The dependencies are installed with pip into a directory of their own, cached by the hash of the
requirements and the target, so a rebuild is instant; the package directory (code files over the
dependencies) and its zip are cached by the hash of everything in them. Once `make setup` has
filled the course's wheelhouse, builds install from it alone (`--no-index --find-links`), so the
lessons make no network request; `online=True` asks the package index instead.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import lambdalab
from lambdalab._util.cache import cache_root
from lambdalab.build.targets import Target, local_target

REQUIREMENTS = "requirements.txt"
WHEELHOUSE_ENV = "LAMBDALAB_WHEELHOUSE"
# Files a package never needs (editor and interpreter droppings).
_SKIP = {"__pycache__", ".ipynb_checkpoints", ".DS_Store", ".pytest_cache"}
_MISSING = re.compile(r"(?:No matching distribution found for|"
                      r"Could not find a version that satisfies the requirement) ([^\s(]+)")


class BuildError(Exception):
    """A package cannot be built (a dependency cannot be had, bad requirements, no code)."""


@dataclass
class Build:
    """What a build produced: the package directory, its zip, and what it logged."""

    package_dir: Path
    zip_path: Path
    target: Target
    requirements: list[str]
    log: list[str] = field(default_factory=list)

    def zip_bytes(self) -> bytes:
        """The zip, for `create_function(Code={"ZipFile": ...})`."""
        return self.zip_path.read_bytes()


def default_wheelhouse() -> Path | None:
    """$LAMBDALAB_WHEELHOUSE, else the checkout's build/wheelhouse when `make setup` made one."""
    if os.environ.get(WHEELHOUSE_ENV):
        return Path(os.environ[WHEELHOUSE_ENV])
    path = Path(lambdalab.__file__).resolve().parents[1] / "build" / "wheelhouse"
    return path if path.is_dir() else None


def requirements_of(code_dir: Path) -> list[str]:
    """The requirement lines of `code_dir/requirements.txt` (none when there is no such file)."""
    path = code_dir / REQUIREMENTS
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def _code_files(code_dir: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(code_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP)
        files += [Path(root, n) for n in sorted(names) if n not in _SKIP and not n.endswith(".pyc")]
    return files


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:20]


def _publish(tmp: Path, final: Path) -> None:
    """Move a finished build into place; when another process got there first, keep theirs."""
    try:
        tmp.rename(final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _pip_failure(output: str, target: Target, source: str) -> BuildError:
    names = sorted(set(_MISSING.findall(output)))
    if names:
        return BuildError(f"cannot install {', '.join(names)} for {target.describe()} from {source}. "
                          f"Check the name and version in {REQUIREMENTS}" +
                          ("; or build with --online to use the package index" if "wheelhouse" in source else ""))
    tail = "\n".join(output.strip().splitlines()[-8:])
    return BuildError(f"pip could not install the requirements for {target.describe()} from {source}:\n{tail}")


def install_dependencies(requirements: list[str], target: Target, wheelhouse: Path | None) -> Path:
    """A directory holding `requirements` installed for `target`; cached, so the second time is free."""
    source = f"the wheelhouse {wheelhouse}" if wheelhouse else "the package index"
    key = _digest("\n".join(requirements), target.python, target.platform or sys.platform, sys.executable,
                  str(wheelhouse))
    deps = cache_root() / "deps" / key
    if deps.is_dir():
        return deps
    deps.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".installing-", dir=deps.parent))
    req_file = tmp.with_suffix(".txt")
    req_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    index = ["--no-index", "--find-links", str(wheelhouse)] if wheelhouse else []
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet",
           "--no-compile", "--target", str(tmp), *index, *target.pip_options(), "-r", str(req_file)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    finally:
        req_file.unlink(missing_ok=True)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _pip_failure(done.stdout + done.stderr, target, source)
    shutil.rmtree(tmp / "bin", ignore_errors=True)  # console scripts point at this interpreter: no use on Lambda
    if target.local:
        # Bytecode that stays valid whatever the files' mtimes become once the zip is extracted: without it
        # every cold start would compile the dependencies again (workers write no .pyc).
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
                        "unchecked-hash", str(tmp)], capture_output=True, timeout=600)
    tmp.chmod(0o755)
    _publish(tmp, deps)
    return deps


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # the cached install is never modified: share its files
    except OSError:
        shutil.copy2(src, dst)


def _write_zip(package_dir: Path, zip_path: Path) -> None:
    tmp = zip_path.with_name(f".{zip_path.name}.{os.getpid()}")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in package_dir.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(package_dir).as_posix())
    os.replace(tmp, zip_path)


def build(code_dir: str | Path, *, target: Target | None = None, wheelhouse: Path | None = None,
          online: bool = False, include: tuple[Path, ...] = ()) -> Build:
    """Package `code_dir` with its `requirements.txt` for `target` (default: the local workers).

    `include` names more files to put at the package's top level (a module shared with another lab).
    """
    code_dir = Path(code_dir).resolve()
    if not code_dir.is_dir():
        raise BuildError(f"code directory {str(code_dir)!r} does not exist")
    extra = [Path(p).resolve() for p in include]
    for path in extra:
        if not path.is_file():
            raise BuildError(f"file to include {str(path)!r} does not exist")
    target = target or local_target()
    wheelhouse = None if online else (wheelhouse or default_wheelhouse())
    requirements = requirements_of(code_dir)
    log = [f"Building {code_dir} for {target.describe()}"]
    if not target.local and target != local_target():
        log.append(f"The upload target ({target.describe()}) differs from the local one "
                   f"({local_target().describe()}): run this package on Lambda, not here")
    deps = install_dependencies(requirements, target, wheelhouse) if requirements else None
    if requirements:
        log.append(f"Dependencies ({', '.join(requirements)}) from "
                   f"{'the wheelhouse ' + str(wheelhouse) if wheelhouse else 'the package index'}")
    files = _code_files(code_dir)
    sources = [(f, f.relative_to(code_dir)) for f in files] + [(p, Path(p.name)) for p in extra]
    key = _digest(str(deps), *(part for f, rel in sources for part in (str(rel), f.read_bytes())))
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", code_dir.name)
    package_dir = cache_root() / "packages" / f"{name}-{key}"
    if not package_dir.is_dir():
        package_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=package_dir.parent))
        if deps is not None:
            shutil.copytree(deps, tmp, dirs_exist_ok=True, copy_function=_link_or_copy, symlinks=True)
        for f, rel in sources:
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists() and os.path.samefile(f, dest):
                continue  # a built package built again: its dependencies are linked here already
            shutil.copy2(f, dest)
        tmp.chmod(0o755)
        _publish(tmp, package_dir)
    zip_path = package_dir.with_suffix(".zip")
    if not zip_path.is_file():
        _write_zip(package_dir, zip_path)
    log.append(f"Package: {package_dir} ({zip_path.stat().st_size / 1e6:.1f} MB zipped)")
    return Build(package_dir, zip_path, target, requirements, log)
