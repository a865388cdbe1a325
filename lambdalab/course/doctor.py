"""The environment check a learner runs first: is everything the course needs on this machine?"""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import sys
from dataclasses import dataclass

REQUIRED = ("boto3", "moto", "pillow", "matplotlib", "tqdm", "psutil", "jupyterlab", "psycopg")


@dataclass(frozen=True)
class Finding:
    item: str
    ok: bool
    detail: str


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def findings() -> list[Finding]:
    """One row per thing the course relies on; `ok=False` rows say how to fix them."""
    from lambdalab.runtime.cpu import CpuController

    rows = [Finding("Python", sys.version_info >= (3, 10), f"{platform.python_version()} ({sys.executable})"
                    + ("" if sys.version_info >= (3, 10) else ": the course needs 3.10 or newer"))]
    for package in REQUIRED:
        version = _version(package)
        rows.append(Finding(package, version is not None, version or "missing: run `make setup`"))
    ric = _version("awslambdaric")
    rows.append(runtime_finding())
    rows.append(Finding("runtime interface client", True,
                        f"awslambdaric {ric} (AWS's own)" if ric
                        else "lambdalab.runtime.ric (awslambdaric has no wheel here)"))
    cpu = CpuController(True)
    mechanism = cpu.mechanism
    cpu.close()
    rows.append(Finding("CPU share by memory", True, {
        "cgroup": "cgroup CFS quota", "duty": "SIGSTOP/SIGCONT duty cycle (no writable cgroup)"}[mechanism]))
    from lambdalab.runtime.sandbox import probe
    sandbox = probe()
    rows.append(Finding("Lambda sandbox (/tmp, /var/task, uid 993)", True,
                        "user, mount and PID namespaces" if sandbox.ok else sandbox.note))
    rows.append(_user_finding())
    rows.append(_postgres_finding())
    pgb = shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer",) if shutil.os.path.exists(p)), None)
    rows.append(Finding("pgbouncer (lesson 07)", pgb is not None,
                        pgb or "missing: `apt-get install pgbouncer`, `brew install pgbouncer` or conda-forge"))
    return rows


def report(rows: list[Finding] | None = None) -> str:
    rows = findings() if rows is None else rows
    width = max(len(f.item) for f in rows)
    return "\n".join(f"{'✅ OK  ' if f.ok else '❌ FAIL'} {f.item:<{width}}  {f.detail}" for f in rows)


SUPPORTED = ((3, 10), (3, 14))  # the minor versions CI installs and tests (README, pyproject classifiers)


def runtime_finding() -> Finding:
    """Which Lambda runtimes the local runtime runs, and the Python a `python3.N` function really gets."""
    from lambdalab.runtime.imports import python_tag

    return Finding("Lambda runtimes", True,
                   f"python3.N (any N) runs on the local Python {platform.python_version()} ({sys.executable}), "
                   f"AWS_EXECUTION_ENV=AWS_Lambda_{python_tag()}; INIT logs one line when N differs. "
                   "Other runtimes (nodejs, java, ...) are refused")


def _user_finding() -> Finding:
    """Who runs the course: as root, PostgreSQL and pgbouncer run as an unprivileged system user."""
    import getpass
    import os

    from lambdalab.cloud.postgres import SERVICE_USER

    try:
        name = getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        name = "?"
    if not hasattr(os, "geteuid"):
        return Finding("user", True, name)
    uid = os.geteuid()
    role = f"root: the databases run as {SERVICE_USER!r}" if uid == 0 else "an ordinary user"
    return Finding("user", True, f"{name} (uid {uid}), {role}")


def _postgres_finding() -> Finding:
    """Where lesson 07's PostgreSQL comes from, and its version."""
    import subprocess

    from lambdalab.cloud.postgres import PostgresError, postgres_source

    try:
        bin_dir, source = postgres_source()
    except PostgresError as e:
        return Finding("PostgreSQL (lesson 07)", False, "missing: " + str(e).splitlines()[0] +
                       " Debian: `sudo apt-get install postgresql`; macOS: `brew install postgresql@17`")
    try:
        version = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True,
                                 timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return Finding("PostgreSQL (lesson 07)", False, f"{bin_dir / 'postgres'} does not run: {e}")
    return Finding("PostgreSQL (lesson 07)", bool(version), f"{version or 'no version'}, {source} ({bin_dir})")
