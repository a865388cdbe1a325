"""Lambda's sandbox around one execution environment: private `/tmp`, read-only `/var/task`, user 993.

On Lambda a function sees its code at `/var/task` (read-only), layers at `/opt`, a private
`/tmp` of its configured ephemeral storage that survives the reset after a crash or timeout,
only Lambda's environment variables, and runs as an unprivileged user. `NamespaceSandbox`
builds that with Linux user, mount and PID namespaces: the worker's argv starts with the
standalone `launcher.py` (which see), the runtime keeps the user and mount namespaces of the
environment's first worker open (a namespace lives as long as a process or a descriptor holds
it), and restarted workers join them. Where the kernel refuses namespaces (macOS, some
containers), `HostSandbox` keeps today's behaviour honestly: a private temporary directory
(TMPDIR) instead of `/tmp`, a read-only copy of the code, the learner's own user; `probe()` says
why, once, in the function's log and in `lambdalab doctor`.
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lambdalab._util.owned import owned_tempdir, remove_tree
from lambdalab.runtime.config import FunctionConfig

LAUNCHER = Path(__file__).with_name("launcher.py")
TASK_ROOT = "/var/task"
LAYERS_ROOT = "/opt"
# Lambda's function user, sbx_user1051.
SANDBOX_UID, SANDBOX_GID = 993, 990
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")


@dataclass(frozen=True)
class Support:
    """Whether this machine can build the sandbox, and why not."""

    ok: bool
    reason: str = ""

    @property
    def note(self) -> str:
        """The line a function's log and `lambdalab doctor` show when the sandbox is unavailable."""
        return ("" if self.ok else "lambdalab: no Lambda sandbox on this machine (" + self.reason + "): /tmp is a "
                "private directory named by TMPDIR, not the literal /tmp; the code is a read-only copy, not "
                "/var/task; the handler runs as your own user and can read what you can")


class Sandbox(Protocol):
    tmp_path: str  # /tmp as the worker names it
    task_root: str  # the code as the worker names it
    layers_root: str | None  # the merged layers as the worker names them (/opt); None: not mounted
    host_cwd: str  # the directory the worker is spawned in
    note: str  # what this sandbox cannot do, for the function's log; "" if nothing
    setup_ms: float  # the sandbox's own time in the last start, which Init Duration leaves out

    def command(self, argv: list[str], environ: dict[str, str]) -> tuple[list[str], list[int]]: ...
    def started(self, pid: int) -> int: ...
    def close(self) -> None: ...


def _interpreter_dirs() -> list[str]:
    """Host directories the worker's interpreter and its packages live in (bound at the same paths)."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
            *site.getsitepackages()}
    return sorted({os.path.realpath(d) for d in dirs} | dirs)


def _lambdalab_package() -> str:
    """This package's directory: the fallback runtime client (`lambdalab.runtime.ric`) is imported from it.

    Only the package: the source tree around it (an editable install's) stays hidden."""
    return str(Path(__file__).resolve().parents[2])


def _binds(environ: dict[str, str]) -> list[str]:
    """What the sandbox shows of the host, read-only: system dirs, the interpreter, PYTHONPATH entries."""
    binds = [*_SYSTEM_DIRS, *_interpreter_dirs(), _lambdalab_package()]
    for entry in environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry and not entry.startswith((TASK_ROOT, LAYERS_ROOT)):
            binds.append(entry)
    return list(dict.fromkeys(binds))


@functools.cache
def probe() -> Support:
    """Can this machine build the sandbox? Runs the launcher once (about one interpreter start)."""
    if not sys.platform.startswith("linux"):
        return Support(False, f"namespaces are Linux's; this is {sys.platform}")
    import uuid
    here = owned_tempdir("lambdalab-sandbox-probe-")
    module = f"_lambdalab_probe_{uuid.uuid4().hex[:8]}"
    try:
        (here / f"{module}.py").write_text("import os\nopen('/tmp/probe', 'w').close()\nprint(os.getuid())\n")
        here.chmod(0o755)
        spec = _spec(here, None, 1, {}, None, None)
        result = subprocess.run([sys.executable, str(LAUNCHER), spec, "-m", module], capture_output=True,
                                env={"PYTHONPATH": TASK_ROOT, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                                pass_fds=(), text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return Support(False, f"the launcher did not run: {e}")
    finally:
        shutil.rmtree(here, ignore_errors=True)
    if result.returncode != 0 or result.stdout.strip() != str(SANDBOX_UID):
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return Support(False, f"the kernel refused: {last}")
    return Support(True)


def _spec(task: Path, opt: Path | None, tmp_mb: int, environ: dict[str, str], join: list[int] | None,
          pid_fd: int | None) -> str:
    """The launcher's SPEC: a line per field (see launcher.py; it imports no parser)."""
    fields = [("tmp_mb", str(tmp_mb)), ("task", str(task)), ("opt", str(opt) if opt else ""),
              *(("bind", path) for path in _binds(environ)),
              ("join", ",".join(map(str, join or []))), ("pid_fd", "" if pid_fd is None else str(pid_fd)),
              ("uid", str(SANDBOX_UID)), ("gid", str(SANDBOX_GID))]
    for name, value in fields:
        if "\n" in value:
            raise ValueError(f"the sandbox cannot show a path with a line break in its name: {value!r} ({name})")
    return "\n".join(f"{name}={value}" for name, value in fields)


class NamespaceSandbox:
    """The sandbox as Linux namespaces; see the module docstring and `launcher.py`."""

    tmp_path = "/tmp"
    task_root = TASK_ROOT
    note = ""
    setup_ms = 0.0  # the launcher's own time at the last start, outside Init Duration (see launcher.py)

    def __init__(self, config: FunctionConfig, layers: Path | None = None):
        self._config = config
        self.host_cwd = str(config.code_dir)
        self._layers = layers
        self.layers_root = LAYERS_ROOT if layers is not None else None
        self._namespaces: list[int] = []  # user, mount: held from the first worker until close()
        self._closing = threading.Lock()
        self._pid_pipe: tuple[int, int] | None = None

    def command(self, argv: list[str], environ: dict[str, str]) -> tuple[list[str], list[int]]:
        """`argv` (`python -m client handler`) run inside the sandbox, and the descriptors it needs."""
        at = argv.index(sys.executable)
        module_at = argv.index("-m", at)
        prefix, python = argv[:at], argv[at:module_at]  # the interpreter and its flags (-S -s ...)
        flag, rest = argv[module_at], argv[module_at + 1:]
        self._pid_pipe = os.pipe()
        fds = [self._pid_pipe[1], *self._namespaces]
        spec = _spec(self._config.code_dir, self._layers, self._config.ephemeral_storage_mb,
                     environ, self._namespaces or None, self._pid_pipe[1])
        return [*prefix, *python, str(LAUNCHER), spec, flag, *rest], fds

    def started(self, pid: int) -> int:
        """The pid of the worker proper (forked inside the PID namespace), once `pid` is running.

        Returns when the launcher hands over to the runtime client (or dies); its own time is
        then in `setup_ms`."""
        read_fd, write_fd = self._pid_pipe
        os.close(write_fd)
        try:
            data = b""
            while chunk := os.read(read_fd, 64):
                data += chunk
        finally:
            os.close(read_fd)
        report = {line[:1]: int(line[1:]) for line in data.decode().split()}
        self.setup_ms = report.get("s", 0) / 1e6
        if not self._namespaces and "p" in report:
            # The namespaces (and the /tmp tmpfs in them) now outlive this worker: a restart joins them.
            self._namespaces = [os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
                                for kind in ("user", "mnt")]
        return report.get("p", pid)

    def close(self) -> None:
        """Let the namespaces go: with the last worker dead, the kernel frees the private /tmp.

        Once: an environment can be destroyed by the janitor and by a close at the same time."""
        with self._closing:
            namespaces, self._namespaces = self._namespaces, []
        for fd in namespaces:
            os.close(fd)


class HostSandbox:
    """No namespaces: a private temporary directory and a read-only copy of the code, said so in the log."""

    def __init__(self, config: FunctionConfig, support: Support, copy_code: bool = True):
        self._dir = owned_tempdir(f"lambdalab-{config.name}-")  # swept by a later start should this process be killed
        self.tmp_path = str(self._dir / "tmp")
        os.mkdir(self.tmp_path)
        if not copy_code:  # a restore: the forked worker has the template's code (and path) already
            self.task_root = self.host_cwd = str(config.code_dir)
        else:
            task = self._dir / "task"
            shutil.copytree(config.code_dir, task, ignore=shutil.ignore_patterns("__pycache__"))
            for path in (task, *task.rglob("*")):  # read-only, as far as permissions go (root ignores them)
                mode = path.stat().st_mode
                path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
            self.task_root = self.host_cwd = str(task)
        self.layers_root = None
        self.note = support.note
        self.setup_ms = 0.0  # the copy above is made before the worker starts, outside INIT

    def command(self, argv: list[str], environ: dict[str, str]) -> tuple[list[str], list[int]]:
        return argv, []

    def started(self, pid: int) -> int:
        return pid

    def close(self) -> None:
        remove_tree(self._dir)  # the copy is read-only: rmtree needs write access


def for_environment(config: FunctionConfig, layers: Path | None = None, enabled: bool = True) -> Sandbox:
    """The sandbox one execution environment runs in: namespaces where the kernel allows them and
    `enabled` (switched off, to measure what the sandbox costs, the host fallback is used)."""
    support = probe() if enabled else Support(False, "switched off: LocalRuntime(sandbox=False)")
    if support.ok:
        return NamespaceSandbox(config, layers)
    return HostSandbox(config, support)
