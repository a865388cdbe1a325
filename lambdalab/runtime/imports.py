"""What a worker can import: its code package, its layers, and what Lambda's Python runtime provides.

On Lambda a handler sees its deployment package (/var/task), its layers' `python` and
`python/lib/python3.X/site-packages` directories under /opt, and the runtime's own libraries (the
AWS SDK and the runtime interface client), in that order; nothing else
(https://docs.aws.amazon.com/lambda/latest/dg/python-package.html, "Dependency search path and
runtime-included libraries"; https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html).
Here the worker's interpreter starts without `site` (`-S -s`), so the venv's site-packages and
its `.pth` files (which put the project root, and so `lambdalab`, on the path) are not on
`sys.path`; `PYTHONPATH` names exactly the directories above. The runtime's libraries come from a
"runtime site": a directory of links to those distributions in the venv, plus a copy of the
project's own runtime client as the top-level package `ric`, made once per interpreter and cached.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import sys
import tempfile
from pathlib import Path

from lambdalab._util.cache import cache_root

# What Lambda's Python runtime itself provides: boto3 and its dependencies, and the runtime client.
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3",
                         "awslambdaric", "simplejson", "snapshot-restore-py")
# No `site` (no venv site-packages, no .pth files), no user site; -P (3.11+) keeps the working
# directory from being prepended, so the code package is on the path once, where Lambda puts it.
WORKER_FLAGS = ("-S", "-s", *(("-P",) if sys.version_info >= (3, 11) else ()))
RIC_DIR = Path(__file__).resolve().parent / "ric"


def python_tag() -> str:
    """`python3.X` of the interpreter that runs the workers."""
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def layer_paths(layer: Path) -> list[str]:
    """Where Lambda's Python runtime looks inside one extracted layer, in its order."""
    return [str(layer / "python" / "lib" / python_tag() / "site-packages"), str(layer / "python")]


def worker_path(code_dir: Path, layers: tuple[Path, ...] = ()) -> list[str]:
    """The worker's import path: the code package, each layer, then the runtime's libraries."""
    path = [str(code_dir)]
    for layer in layers:
        path += layer_paths(layer)
    return [*path, str(runtime_site())]


def _entries(dist: importlib.metadata.Distribution) -> set[str]:
    """The top-level names (packages, modules, .dist-info) a distribution installed."""
    tops = set()
    for file in dist.files or ():
        top = file.parts[0]
        if top not in ("..", "__pycache__") and not top.endswith(".data"):
            tops.add(top)
    return tops


def _runtime_entries() -> dict[str, Path]:
    entries: dict[str, Path] = {}
    for name in RUNTIME_DISTRIBUTIONS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # awslambdaric is Linux-only; the runtime falls back on `ric`
        base = Path(dist.locate_file(""))
        for top in _entries(dist):
            if (base / top).exists():
                entries[top] = base / top
    return entries


_SITE: Path | None = None


def runtime_site() -> Path:
    """The directory of the runtime's own libraries; built on first use, then reused."""
    global _SITE
    if _SITE is not None and _SITE.is_dir():
        return _SITE
    entries = _runtime_entries()
    ric_files = sorted(RIC_DIR.glob("*.py"))
    digest = hashlib.sha256(sys.executable.encode())
    for top, target in sorted(entries.items()):
        digest.update(f"{top}={target}\n".encode())
    for path in ric_files:
        digest.update(path.read_bytes())
    site = cache_root() / "runtime-site" / f"{python_tag()}-{digest.hexdigest()[:16]}"
    if not site.is_dir():
        site.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=site.parent))
        for top, target in entries.items():
            (tmp / top).symlink_to(target)
        (tmp / "ric").mkdir()
        for path in ric_files:
            shutil.copy2(path, tmp / "ric" / path.name)
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide it from an unprivileged worker
        try:
            tmp.rename(site)
        except OSError:  # another process made it first: same content
            shutil.rmtree(tmp, ignore_errors=True)
    _SITE = site
    return site


def merged_layers(layers: tuple[Path, ...]) -> Path | None:
    """The layers extracted into one directory in order, a later layer's files replacing an earlier
    one's, as Lambda extracts them into /opt; cached by the layers' paths and modification times."""
    if not layers:
        return None
    stamp = "\n".join(f"{layer.resolve()}:{layer.stat().st_mtime_ns}" for layer in layers)
    target = cache_root() / "layers" / hashlib.sha256(stamp.encode()).hexdigest()[:16]
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
        for layer in layers:
            shutil.copytree(layer, partial, dirs_exist_ok=True, symlinks=True)
        try:
            partial.rename(target)
        except OSError:  # another environment merged the same layers first
            shutil.rmtree(partial, ignore_errors=True)
    return target
