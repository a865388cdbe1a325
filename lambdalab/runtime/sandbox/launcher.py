"""Runs inside a new worker process, before the runtime interface client: builds Lambda's sandbox.

Run as ``python launcher.py SPEC -m MODULE ARGS...``. It never imports ``lambdalab`` (the
sandbox hides the learner's source tree) and little else (ctypes, not even json), so the
sandbox costs a few system calls rather than a second interpreter. SPEC is one line per field,
``name=value`` (``bind=`` repeated, lists comma-separated), so that no parser is imported:

``tmp_mb``   the size of the environment's private ``/tmp`` (a tmpfs: writing past it is ENOSPC);
``task``     the code package, bound read-only at ``/var/task``;
``opt``      a directory of extracted layers bound read-only at ``/opt``, or null;
``binds``    host directories the interpreter needs, bound read-only at the same paths;
``join``     null on the environment's first start; else the file descriptors of the user and
             mount namespaces of that start, held by the runtime, which a restarted worker joins
             so that ``/tmp`` survives the reset after a crash or timeout;
``pid_fd``   a pipe on which the worker's host pid is written (``p<pid>``, the process the runtime
             watches), then the launcher's own time (``s<nanoseconds>``, from its first line to
             the runtime client's start), or null;
``uid``/``gid`` the unprivileged ids the handler runs as (Lambda's sbx_user1051: 993/990).

The first start unshares a user and a mount namespace (mapping only the caller's own uid, as
an unprivileged user may), builds a minimal root in a tmpfs (the binds, ``/var/task``, ``/opt``,
a size-limited ``/tmp``, a few device nodes), and pivots into it, so the learner's home, the
parent's files and the host's ``/tmp`` are out of reach. Every start then unshares a PID
namespace and forks twice: a small init (pid 1 there) and the worker (pid 2), which mounts a
``/proc`` that shows only the sandbox's processes (the parent's ``/proc/<pid>/environ`` does not
exist for it), enters a nested user namespace that maps ``uid`` onto the outer root (so it
holds no capability over the sandbox), and runs the client. The forking parent reports the
worker's host pid, waits, and exits as the worker did.

Lambda reports as Init Duration the INIT phase (runtime and function init), not the creation of
the microVM that hosts it; the launcher's part (namespaces, mounts, forks) stands for the latter,
so it reports its own time and the runtime leaves it out of Init Duration. For that the worker's
path imports nothing the runtime client imports later (which would make the client's imports
look cheaper): ``signal`` is imported only by the init and the waiting parent.
"""

import time

_STARTED_NS = time.monotonic_ns()

import ctypes  # noqa: E402  (after the clock: its import is part of the launcher's time)
import os  # noqa: E402
import sys  # noqa: E402

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
SIGKILL = 9
DEVICES = ("null", "zero", "full", "random", "urandom")
# pivot_root has no libc wrapper: its system call number, per architecture (x86_64's own table;
# aarch64 and riscv64 share the generic one).
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41}
# Lambda's function user and group, as /etc/passwd and /etc/group name them there.
SANDBOX_USER = "sbx_user1051"
MASKED = ("/etc/shadow", "/etc/gshadow")  # readable by a worker whose outer uid is root

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(), flags,
                       data and data.encode()), f"mount {target}")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _map_ids(inside_uid: int, outside_uid: int, inside_gid: int, outside_gid: int) -> None:
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{inside_uid} {outside_uid} 1")
    _write("/proc/self/gid_map", f"{inside_gid} {outside_gid} 1")


def _bind(source: int | str, target: str, *, file: bool = False, writable: bool = False) -> None:
    """Bind `source` (a path, or an O_PATH descriptor opened before the host's paths were covered)."""
    if file:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    else:
        os.makedirs(target, exist_ok=True)
    _mount(source if isinstance(source, str) else f"/proc/self/fd/{source}", target, None, MS_BIND | MS_REC)
    if not writable:
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _name_the_user(root: str, uid: int, gid: int) -> None:
    """Lambda's sbx_user1051 before the host's /etc/passwd and /etc/group, so pwd and getpass name the user.

    Each file is written into the new root, bound over the read-only /etc copy, then unlinked
    (the bind keeps it): nothing extra shows at the sandbox's top level.
    """
    for name, entry in (("passwd", f"{SANDBOX_USER}:x:{uid}:{gid}::/home/{SANDBOX_USER}:/sbin/nologin\n"),
                        ("group", f"{SANDBOX_USER}:x:{gid}:\n")):
        target = f"{root}/etc/{name}"
        if not os.path.exists(target):
            continue
        with open(f"/etc/{name}", "rb") as f:
            text = f.read()
        staged = f"{root}/.{name}"
        with open(staged, "wb") as f:
            f.write(entry.encode() + text)  # first: a host account with the same id must not shadow it
        _bind(staged, target, file=True)
        os.unlink(staged)


def _build_root(spec: dict) -> None:
    """Mount the sandbox's file system in a tmpfs and pivot into it."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks back to the host
    links = {p: os.readlink(p) for p in spec["binds"] if os.path.islink(p) and os.path.dirname(p) == "/"}
    sources = {p: os.open(p, os.O_PATH) for p in spec["binds"] if p not in links and os.path.isdir(p)}
    task = os.open(spec["task"], os.O_PATH)
    opt = os.open(spec["opt"], os.O_PATH) if spec.get("opt") else None
    root = "/tmp"  # the new root's mount point; the sources under it were opened above
    _mount("sandbox", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for path, target in links.items():  # /bin -> usr/bin on merged-/usr systems
        os.symlink(target, root + path)
    # The private /tmp first: binds of host directories under /tmp (a checkout or venv there) then
    # land on it, visible at their own paths, instead of being hidden by it.
    os.makedirs(root + "/tmp")
    _mount("tmp", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={spec['tmp_mb']}m,mode=1777")
    for path, fd in sources.items():
        _bind(fd, root + path)
    for path in MASKED:
        if os.path.exists(root + path):
            _bind("/dev/null", root + path, file=True)
    for name in DEVICES:
        _bind(f"/dev/{name}", f"{root}/dev/{name}", file=True, writable=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    _name_the_user(root, spec["uid"], spec["gid"])
    _bind(task, root + "/var/task")
    if opt is not None:
        _bind(opt, root + "/opt")
    else:
        os.makedirs(root + "/opt")
    for fd in (*sources.values(), task, *([opt] if opt is not None else [])):
        os.close(fd)
    # A proc bound from the host makes mounting a fresh one (in the PID namespace) allowed; the
    # fresh one covers it before any handler code runs.
    _bind("/proc", root + "/proc", writable=True)
    os.makedirs(root + "/.old")
    machine = os.uname().machine
    if machine not in SYS_PIVOT_ROOT:
        raise OSError(f"pivot_root: no system call number known for {machine}")
    _check(_libc.syscall(SYS_PIVOT_ROOT[machine], root.encode(), (root + "/.old").encode()), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old", MNT_DETACH), "umount old root")
    os.rmdir("/.old")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _setns(fd: int, kind: int) -> None:
    _check(_libc.setns(fd, kind), "setns")
    os.close(fd)


def _init(lifeline: int) -> None:
    """Pid 1 of the PID namespace: reaps orphans, so the worker is an ordinary process (pid 2) as on Lambda.

    It lives as long as the forking parent. The parent-death signal kills it even while it is
    stopped (a frozen environment's process group); it misses a parent that exited before this
    process first ran (a short run under load), so `lifeline`, the read end of a pipe whose only
    write end the parent holds, also returns at the parent's exit. An init ignores signals it has
    no handler for, even SIGKILL sent from inside: a handler that kills itself must die, as on Lambda.
    """
    import signal

    _libc.prctl(PR_SET_PDEATHSIG, SIGKILL)
    os.closerange(0, lifeline)  # holds no other pipe open: the runtime reads the log and the pid to their end
    os.closerange(lifeline + 1, 65536)

    def reap(*_: object) -> None:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass

    signal.signal(signal.SIGCHLD, reap)
    reap()
    while os.read(lifeline, 1):  # retried after each SIGCHLD's reaping; empty once the parent is gone
        pass
    os._exit(0)


def _mirror_exit(pid: int) -> None:
    """Exit as the child did: the runtime reads a worker's death from this process."""
    import signal

    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # the only two whose handler cannot be set
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status))


def parse_spec(text: str) -> dict:
    """SPEC's lines as the dict the functions here read (the inverse of the runtime's `_spec`)."""
    spec: dict = {"binds": [], "opt": None, "join": None, "pid_fd": None}
    for line in text.split("\n"):
        name, _, value = line.partition("=")
        if name == "bind":
            spec["binds"].append(value)
        elif name in ("tmp_mb", "pid_fd", "uid", "gid"):
            spec[name] = int(value) if value else None
        elif name == "join":
            spec[name] = [int(fd) for fd in value.split(",")] if value else None
        else:
            spec[name] = value or None
    return spec


def main() -> None:
    spec = parse_spec(sys.argv[1])
    uid, gid = os.getuid(), os.getgid()
    if spec.get("join"):
        user_fd, mnt_fd = spec["join"]
        _setns(user_fd, CLONE_NEWUSER)
        _setns(mnt_fd, CLONE_NEWNS)
    else:
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
        _map_ids(0, uid, 0, gid)
        _build_root(spec)
    _check(_libc.unshare(CLONE_NEWPID), "unshare pid")
    lifeline, held = os.pipe()
    if os.fork() == 0:
        os.close(held)
        _init(lifeline)
    os.close(lifeline)
    pid = os.fork()
    report = spec["pid_fd"]
    if pid:
        if report is not None:
            os.write(report, f"p{pid}\n".encode())
            os.close(report)
        _mirror_exit(pid)
    os.close(held)  # the init's lifeline is the waiting parent's alone
    _libc.prctl(PR_SET_PDEATHSIG, SIGKILL)  # dies with the waiting parent
    # /proc of the new PID namespace, over the host's (or a crashed worker's) one.
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _check(_libc.unshare(CLONE_NEWUSER), "unshare user")
    _map_ids(spec["uid"], 0, spec["gid"], 0)
    os.chdir("/var/task")
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # this script's directory (unless -P kept it out), which the sandbox does not show
    sys.path_importer_cache.clear()  # entries looked up before the pivot saw the host's directories
    del sys.argv[:3]  # [launcher, SPEC, -m]: the client sees its own argv, as under `python -m`
    import runpy

    if report is not None:  # last: the runtime's clock for INIT resumes here
        os.write(report, f"s{time.monotonic_ns() - _STARTED_NS}\n".encode())
        os.close(report)
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
