"""The environment check a learner runs first: is everything the course needs on this machine?"""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import sys
from dataclasses import dataclass

REQUIRED = ("boto3", "moto", "pillow", "matplotlib", "tqdm", "psutil", "jupyterlab", "psycopg", "pgserver")


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

    rows = [Finding("Python", sys.version_info >= (3, 10), f"{platform.python_version()} ({sys.executable})")]
    for package in REQUIRED:
        version = _version(package)
        rows.append(Finding(package, version is not None, version or "missing: run `make setup`"))
    ric = _version("awslambdaric")
    rows.append(Finding("runtime interface client", True,
                        f"awslambdaric {ric} (AWS's own)" if ric else "lambdalab.runtime.ric (awslambdaric has no wheel here)"))
    cpu = CpuController(True)
    mechanism = cpu.mechanism
    cpu.close()
    rows.append(Finding("CPU share by memory", True, {
        "cgroup": "cgroup CFS quota", "duty": "SIGSTOP/SIGCONT duty cycle (no writable cgroup)"}[mechanism]))
    pgb = shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer",) if shutil.os.path.exists(p)), None)
    rows.append(Finding("pgbouncer (lesson 07)", pgb is not None,
                        pgb or "missing: `apt-get install pgbouncer`, `brew install pgbouncer` or conda-forge"))
    return rows


def report() -> str:
    width = max(len(f.item) for f in findings())
    return "\n".join(f"{'✅' if f.ok else '❌'} {f.item:<{width}}  {f.detail}" for f in findings())
