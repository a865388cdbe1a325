"""Who is on the other end of a loopback TCP connection: the process that holds the client's socket.

On Lambda the Runtime API is reachable only inside the execution environment's microVM. Here
it listens on 127.0.0.1, where any local process could reach it, and the runtime client sends
no secret (awslambdaric reads only `AWS_LAMBDA_RUNTIME_API`, host:port). So the server
authenticates the connection itself: Linux's `/proc/net/tcp` names the inode of the client's
socket, and `/proc/<pid>/fd` says which process holds it. `held_by_tree` answers whether a
process of a worker's tree holds it; where `/proc` has no such table (macOS) it answers None,
and the caller decides.
"""

from __future__ import annotations

import os
import socket
import struct

_TCP_TABLE = "/proc/net/tcp"


def _hex_address(host: str, port: int) -> str:
    """An IPv4 address as /proc/net/tcp writes it: the address's bytes in host order, then the port."""
    (packed,) = struct.unpack("=I", socket.inet_aton(host))
    return f"{packed:08X}:{port:04X}"


def socket_inode(local: tuple[str, int], remote: tuple[str, int]) -> int | None:
    """The inode of the TCP socket bound to `local` and connected to `remote`; None if none (or no table)."""
    want_local, want_remote = _hex_address(*local[:2]), _hex_address(*remote[:2])
    try:
        with open(_TCP_TABLE, "rb") as f:
            lines = f.read().decode().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 9 and fields[1] == want_local and fields[2] == want_remote:
            return int(fields[9])
    return None


def holds(pid: int, inode: int) -> bool:
    """Whether process `pid` has the socket `inode` open."""
    target = f"socket:[{inode}]"
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


def descendants(root: int) -> list[int]:
    """Every live process below `root`, by one pass over /proc's parent links."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []  # no /proc (macOS): the process group is all there is
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def held_by_tree(client: tuple[str, int], server: tuple[str, int], first: list[int], root: int) -> bool | None:
    """Whether the client end of the connection `client` -> `server` belongs to `root`'s process tree.

    `first` are the pids most likely to hold it (the worker proper), looked at before the tree.
    None when this system has no /proc/net/tcp to tell.
    """
    if not os.path.exists(_TCP_TABLE):
        return None
    inode = socket_inode(client, server)
    if inode is None:
        return False  # gone already, or not a loopback TCP peer of this machine's network namespace
    tree = [pid for pid in dict.fromkeys([*first, root]) if pid]
    if any(holds(pid, inode) for pid in tree):
        return True
    return any(holds(pid, inode) for pid in descendants(root) if pid not in tree)
