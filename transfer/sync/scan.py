"""Listing both sides of a sync: this machine with ``os.scandir``, the host with ONE command.

The host side is a single ``find -printf`` (NUL-separated, so any byte but NUL and ``/`` may
appear in a name) with a ``python3`` fallback for a ``find`` without ``-printf``. Per-folder
SFTP listing costs a round trip per folder and is what makes naive syncs of big trees slow.
Symlinks are listed as links and never followed, except a root that is a link to a folder.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from dataclasses import dataclass

from transfer.errors import GputuiError, RemoteCommandFailed
from transfer.scripts import load
from transfer.sync.errors import UnsafeHostData
from transfer.sync.excludes import IGNORE_FILES, ExcludeRules
from transfer.sync.manifest import (
    PART_SUFFIX,
    STAGE_NAME,
    STAGE_PREFIX,
    Entry,
    Kind,
    Manifest,
    is_safe_relative,
)

SCAN_MAGIC = b"gputui-scan"
TOOLS = ("xxh128sum", "sha256sum", "python3", "tar")
_STAT_KINDS: dict[int, Kind] = {stat.S_IFREG: "f", stat.S_IFDIR: "d", stat.S_IFLNK: "l"}

# The host's side of the scan for a find without -printf (busybox, BSD): the same records.
_PYTHON_SCAN = r"""
import os, stat, sys
out = sys.stdout.buffer
root = os.fsencode(sys.argv[1]); only = [os.fsencode(a) for a in sys.argv[2:]]
kinds = {stat.S_IFREG: b"f", stat.S_IFDIR: b"d", stat.S_IFLNK: b"l"}
def emit(path, rel):
    st = os.lstat(path); k = kinds.get(stat.S_IFMT(st.st_mode))
    if k is None: return None
    t = os.readlink(path) if k == b"l" else b""
    out.write(b"%s %d %d %o %s\0%s\0" % (k, st.st_size, st.st_mtime_ns // 10**9,
              stat.S_IMODE(st.st_mode), rel, t))
    return k
def walk(path, rel):
    for e in os.scandir(path):
        r = rel + e.name
        if emit(e.path, r) == b"d": walk(e.path, r + b"/")
if only:
    import fnmatch
    for e in os.scandir(root):
        if any(fnmatch.fnmatchcase(e.name, p) for p in only): emit(e.path, e.name)
else:
    walk(root, b"")
"""


@dataclass(frozen=True)
class ScanTarget:
    """What to list: a whole folder (``names`` empty), or only some names in it (fnmatch).

    On the host ``root`` may start with ``~`` or be relative to ``base`` (itself absolute,
    ``~``-based or relative to the home folder): the scan resolves it there and reports the
    absolute path, which saves a round trip to ask for the home folder.
    """

    root: str
    names: tuple[str, ...] = ()
    base: str = "~"


def shell_path(path: str, base: str = "~") -> str:
    """A shell word for a host path: ``~`` becomes ``"$HOME"``, a relative path joins ``base``."""
    if path.startswith("/"):
        return shlex.quote(path)
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        rest = path[2:].strip("/")
        return '"$HOME"' + ("/" + shlex.quote(rest) if rest else "")
    if path.startswith("~"):
        return shlex.quote(path)  # ~user forms are not expanded
    inner = shell_path(base if base not in ("", ".") else "~", "~")
    rest = path.strip("/")
    return inner + ("/" + shlex.quote(rest) if rest and rest != "." else "")


def fnmatch_escape(name: str) -> str:
    """A literal name as an fnmatch/find ``-name`` pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in name)


# -- the host side ---------------------------------------------------------------------------
def remote_scan_command(target: ScanTarget) -> str:
    """A POSIX sh script whose stdout is the NUL-separated scan of ``target``: a prelude of
    quoted values, then ``scan.sh``."""
    names = " ".join(shlex.quote(n) for n in target.names)
    return (
        f"T={shell_path(target.root, target.base)}\n"
        f"gputui_tools={shlex.quote(' '.join(TOOLS))}\n"
        f"gputui_py={shlex.quote(_PYTHON_SCAN)}\n"
        f"set -- {names}\n" + load("scan.sh")
    )


def parse_remote_scan(data: bytes, host: str) -> Manifest:
    """Records ``<type> <size> <mtime> <mode> <path>\\0<link target>\\0`` after a header.

    The host is not trusted: a path that would leave the root (absolute, ``..``, an empty
    part), or one whose folder the listing did not give as a folder before it (a name under a
    link), refuses the whole listing, as rsync refuses a malicious server.
    """
    fields = data.split(b"\0")
    if len(fields) < 4 or fields[0] != SCAN_MAGIC:
        raise RemoteCommandFailed(f"{host}: the file listing came back garbled")
    tools = frozenset(os.fsdecode(fields[1]).split())
    kind = os.fsdecode(fields[2])
    if kind not in ("d", "f", "l", "missing", "other"):
        raise RemoteCommandFailed(f"{host}: the file listing came back garbled")
    manifest = Manifest(root_kind=kind, tools=tools)  # type: ignore[arg-type]
    manifest.root = os.fsdecode(fields[3])
    records = fields[4:]
    # The hot loop of a no-op push of a big tree: names decoded directly, and only names that
    # could be our own temp files or stages go through Manifest.add's checks.
    encoding = sys.getfilesystemencoding()
    entries = manifest.entries
    add = manifest.add
    kinds = _KIND_CODES
    for index in range(0, len(records) - 1, 2):
        try:
            code, size, mtime, mode, path = records[index].split(b" ", 4)
            entry_kind = kinds.get(code)
            if entry_kind is None or not path:
                continue
            seconds, _, fraction = mtime.partition(b".")
            whole = int(seconds)
            if whole < 0 and fraction.strip(b"0"):
                whole -= 1  # floor, as st_mtime_ns // 10**9 is
            entry = Entry(
                entry_kind,
                int(size) if entry_kind == "f" else 0,
                whole,
                int(mode, 8) & 0o7777,
                records[index + 1].decode(encoding, "surrogateescape")
                if entry_kind == "l"
                else "",
            )
        except ValueError:
            raise RemoteCommandFailed(f"{host}: the file listing came back garbled") from None
        rel = path.decode(encoding, "surrogateescape")
        if not is_safe_relative(rel):
            raise UnsafeHostData(f"refused the file listing of {host}: unsafe path {rel!r}")
        if rel.endswith(PART_SUFFIX) or rel.startswith(STAGE_PREFIX):
            add(rel, entry)
            continue
        folder = rel.rpartition("/")[0]
        if (folder and (entries.get(folder) or _NOT_LISTED).kind != "d") or rel in entries:
            raise UnsafeHostData(
                f"refused the file listing of {host}: unsafe path {rel!r} (listed twice, or "
                "its folder not listed as a folder before it)"
            )
        entries[rel] = entry
    return manifest


_NOT_LISTED = Entry("f", 0, 0, 0)


_KIND_CODES: dict[bytes, Kind] = {b"f": "f", b"d": "d", b"l": "l"}


# -- this machine ----------------------------------------------------------------------------
class LocalScanError(GputuiError):
    """The local source or destination cannot be listed."""


def local_root_kind(root: str) -> str:
    try:
        st = os.stat(root)
    except FileNotFoundError:
        try:
            os.lstat(root)
        except FileNotFoundError:
            return "missing"
        return "l"
    except OSError as exc:
        raise LocalScanError(f"cannot read {root}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        return "d"
    if stat.S_ISREG(st.st_mode):
        return "f" if not os.path.islink(root) else "l"
    return "other"


def scan_local(target: ScanTarget, rules: ExcludeRules | None = None) -> Manifest:
    """List ``target`` on this machine (blocking: run it in a thread).

    With ``rules``, ignore files found on the way are added to them and excluded folders are
    not entered at all (a pushed project's ``.venv`` costs nothing).
    """
    kind = local_root_kind(target.root)
    manifest = Manifest(root_kind=kind)  # type: ignore[arg-type]
    if kind != "d":
        return manifest
    if target.names:
        import fnmatch

        with os.scandir(target.root) as it:
            for item in it:
                if any(fnmatch.fnmatchcase(item.name, p) for p in target.names):
                    entry = _entry_of(item)
                    if entry is not None:
                        manifest.add(item.name, entry)
        return manifest
    _walk(target.root, "", manifest, rules)
    return manifest


def _walk(path: str, rel: str, manifest: Manifest, rules: ExcludeRules | None) -> None:
    try:
        with os.scandir(path) as it:
            items = list(it)
    except PermissionError:
        raise LocalScanError(f"cannot read folder {path}: permission denied") from None
    if rules is not None:
        for ignore in IGNORE_FILES:
            for item in items:
                if item.name == ignore and item.is_file(follow_symlinks=False):
                    rules.add_file(rel.rstrip("/"), _read_text(item.path))
    check = rules is not None and not rules.empty
    for item in items:
        name = item.name
        entry = _entry_of(item)
        if entry is None:
            continue
        child = rel + name
        if check and rules is not None and rules.excluded(child, entry.kind == "d"):
            continue
        manifest.add(child, entry)
        if entry.kind == "d" and not (not rel and STAGE_NAME.match(name)):
            _walk(item.path, child + "/", manifest, rules)


def _entry_of(item: os.DirEntry[str]) -> Entry | None:
    try:
        st = item.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    kind = _STAT_KINDS.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        return None
    target = os.readlink(item.path) if kind == "l" else ""
    return Entry(
        kind,
        st.st_size if kind == "f" else 0,
        st.st_mtime_ns // 1_000_000_000,
        stat.S_IMODE(st.st_mode),
        target,
    )


def entry_of_path(path: str) -> Entry | None:
    """The entry for one path (not followed), or None when nothing usable is there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    kind = _STAT_KINDS.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        return None
    return Entry(
        kind,
        st.st_size if kind == "f" else 0,
        st.st_mtime_ns // 1_000_000_000,
        stat.S_IMODE(st.st_mode),
        os.readlink(path) if kind == "l" else "",
    )


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError:
        return ""


def filter_manifest(manifest: Manifest, rules: ExcludeRules) -> list[str]:
    """Drop excluded entries (and everything under an excluded folder) in place; return the
    top-most excluded paths."""
    if rules.empty:
        return []
    pruned: set[str] = set()
    excluded: list[str] = []
    for rel in sorted(manifest.entries):
        if _under(rel, pruned):
            del manifest.entries[rel]
            continue
        entry = manifest.entries[rel]
        if rules.excluded(rel, entry.kind == "d"):
            del manifest.entries[rel]
            excluded.append(rel)
            if entry.kind == "d":
                pruned.add(rel)
    return excluded


def _under(rel: str, folders: set[str]) -> bool:
    if not folders:
        return False
    at = rel.find("/")
    while at != -1:
        if rel[:at] in folders:
            return True
        at = rel.find("/", at + 1)
    return False
