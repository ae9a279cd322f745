"""Helpers for push/pull tests: trees with hostile names, a byte-exact comparison, one sync call."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from collections.abc import Callable
from pathlib import Path

import psutil
from sshd import SshServer, is_sshd

from transfer.connect import open_link
from transfer.hosts import HostProfile, HostStore
from transfer.sync.engine import Sync, SyncRequest
from transfer.sync.events import SyncEvent, SyncResult

# Small enough to keep tests quick, big enough that files above it take the streaming path.
SMALL_LIMIT = 64 * 1024

HOSTILE_NAMES = [
    "with space.txt",
    "new\nline",
    "tab\there",
    "ünïcødé-数据.bin",
    "-leading-dash",
    "--",
    "quote'and\"double",
    "$(touch pwned)",
    "back\\slash",
    "glob*?[x]",
    "x" * 180 + ".long",
]
UNDECODABLE = os.fsdecode(b"latin1-\xe9\xff")


def make_tree(root: Path) -> None:
    """Small files with hostile names, folders, links (one pointing out), two big files."""
    root.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate([*HOSTILE_NAMES, UNDECODABLE]):
        (root / name).write_bytes(f"content {index} of {name!r}\n".encode() * (index + 1))
    deep = root / "a b" / "ünï" / "-c"
    deep.mkdir(parents=True)
    (deep / "deep file").write_bytes(b"deep\n")
    (root / "empty dir").mkdir()
    (root / "private").mkdir(mode=0o700)
    (root / "private" / "secret").write_bytes(b"s")
    (root / "private" / "secret").chmod(0o600)
    (root / "script.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "script.sh").chmod(0o755)
    (root / "empty file").write_bytes(b"")
    (root / "big one.bin").write_bytes(os.urandom(3 * SMALL_LIMIT + 17))
    (deep / "big\nnewline.bin").write_bytes(os.urandom(2 * SMALL_LIMIT))
    os.symlink("../outside/of/tree", root / "a b" / "link out")
    os.symlink("/etc/passwd", root / "abs link")
    os.symlink("with space.txt", root / "rel link")
    old = 1_500_000_000
    os.utime(root / "with space.txt", (old, old))


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything a sync must carry: kind, bytes or link target, mode, mtime (whole seconds)."""
    result: dict[str, tuple[object, ...]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                result[rel] = ("l", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                result[rel] = ("d", stat.S_IMODE(st.st_mode))
            else:
                result[rel] = (
                    "f", path.read_bytes(), stat.S_IMODE(st.st_mode), st.st_mtime_ns // 10**9
                )
    return result


def file_bytes(tree: dict[str, tuple[object, ...]]) -> int:
    """Total size of the regular files of a snapshot."""
    return sum(len(v[1]) for v in tree.values() if v[0] == "f" and isinstance(v[1], bytes))


def leftovers(root: Path) -> list[str]:
    """Temp files or stages of ours still lying around."""
    found = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            if name.endswith(".part") and name.startswith("."):
                found.append(str(Path(folder, name).relative_to(root)))
    return found


async def sync(
    host: HostProfile,
    direction: str,
    local: Path | str,
    remote: Path | str,
    on_event: Callable[[SyncEvent], None] | None = None,
    **options: object,
) -> SyncResult:
    options.setdefault("small_file_limit", SMALL_LIMIT)
    request = SyncRequest(direction, str(local), str(remote), **options)  # type: ignore[arg-type]
    async with open_link(host) as link:
        return await Sync(link, request, on_event).run()


def drop_connections(server: SshServer) -> None:
    """Cut every connection the way a network failure does: kill the sshd processes that
    serve them, and leave the commands they started to notice on their own.

    (Killing the commands too could hit a login shell half-way through its start-up files; on a
    machine whose shell start-up takes a lock, such as ``pyenv rehash``, that lock would stay.)
    """
    if server.pid is None:
        return
    try:
        children = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return
    serving = [c for c in children if is_sshd(c)]
    for child in serving:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.send_signal(signal.SIGKILL)
    psutil.wait_procs(serving, timeout=5)


def assert_nothing_partial(source: Path, remote: Path) -> None:
    """Every regular file at a final name on the destination is the whole source file."""
    if not remote.exists():
        return
    for folder, _, files in os.walk(remote):
        for name in files:
            path = Path(folder, name)
            rel = path.relative_to(remote)
            if any(part.startswith(".") and part.endswith(".part") for part in rel.parts):
                continue  # a .part file, or a tar batch's staging folder
            if path.is_symlink():
                continue
            assert path.read_bytes() == (source / rel).read_bytes(), f"partial {rel}"


def saved_profile(server: SshServer, workdir: Path, name: str = "box") -> HostProfile:
    """A trusted profile for ``server``, saved in hosts.yaml as the CLI reads it."""
    server.trust()
    profile = server.profile(name, workdir=str(workdir))
    HostStore().upsert(profile)
    return profile
