"""Hashing both ends: for ``--verify`` and to check the prefix of a ``.part`` before resuming.

xxh128 when the host has ``xxh128sum`` (and this machine the xxhash module), else sha256
through ``sha256sum`` or ``python3``. The host hashes its files itself, in one command for the
whole list; this machine hashes in worker threads at the same time.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from typing import Any, Literal

from transfer.errors import RemoteCommandFailed

HashName = Literal["xxh128", "sha256"]
READ_CHUNK = 1 << 20

_PY_HASH = r"""
import hashlib, os, sys
limit = int(sys.argv[1])
for raw in sys.stdin.buffer.read().split(b"\0"):
    if not raw: continue
    h = hashlib.sha256(); left = limit if limit >= 0 else None
    try:
        with open(raw, "rb") as f:
            while left is None or left > 0:
                b = f.read(1 << 20 if left is None else min(1 << 20, left))
                if not b: break
                h.update(b)
                if left is not None: left -= len(b)
        sys.stdout.write(h.hexdigest() + "\n")
    except OSError:
        sys.stdout.write("-\n")
"""


def choose_hash(remote_tools: frozenset[str]) -> HashName:
    if "xxh128sum" in remote_tools:
        try:
            import xxhash  # noqa: F401
        except ImportError:
            return "sha256"
        return "xxh128"
    return "sha256"


def _new_hash(name: HashName) -> Any:
    if name == "xxh128":
        import xxhash

        return xxhash.xxh128()
    return hashlib.sha256()


def hash_local(path: str | int, name: HashName, limit: int | None = None) -> str:
    """Hex digest of the file (or its first ``limit`` bytes). Blocking: call in a thread.

    ``path`` may be an open descriptor: read from its start and left open."""
    digest = _new_hash(name)
    left = limit
    if isinstance(path, int):
        os.lseek(path, 0, os.SEEK_SET)
    with open(path, "rb", buffering=0, closefd=not isinstance(path, int)) as f:
        while left is None or left > 0:
            chunk = f.read(READ_CHUNK if left is None else min(READ_CHUNK, left))
            if not chunk:
                break
            digest.update(chunk)
            if left is not None:
                left -= len(chunk)
    return str(digest.hexdigest())


def _tool(name: HashName, tools: frozenset[str], host: str) -> str | None:
    """The host command for ``name``, or None to use the python3 script."""
    if name == "xxh128":
        return "xxh128sum"
    if "sha256sum" in tools:
        return "sha256sum"
    if "python3" in tools:
        return None
    raise RemoteCommandFailed(f"{host} has neither sha256sum nor python3: cannot hash files")


def prefix_hash_command(path: str, length: int, name: HashName, tools: frozenset[str],
                        host: str) -> str:
    """Hash the first ``length`` bytes of ``path`` on the host; stdout starts with the hex."""
    tool = _tool(name, tools, host)
    if tool is None:
        return f"printf '%s\\0' {shlex.quote(path)} | python3 -c {shlex.quote(_PY_HASH)} {length}"
    return f"head -c {length} -- {shlex.quote(path)} | {tool}"


def parse_single_hash(output: bytes) -> str:
    return output.split(None, 1)[0].decode("ascii", "replace").lstrip("\\") if output else ""


def files_hash_command(root: str, name: HashName, tools: frozenset[str], host: str) -> str:
    """Hash the NUL-separated ``./relative`` names on stdin, in that order."""
    tool = _tool(name, tools, host)
    cd = f"cd -- {shlex.quote(root)} && "
    if tool is None:
        return cd + f"python3 -c {shlex.quote(_PY_HASH)} -1"
    return cd + f"xargs -0 {tool}"  # every name starts with ./: none reads as an option


def parse_files_hashes(output: bytes, names: list[str], by_name: bool) -> dict[str, str]:
    """Digests by relative name. ``by_name``: lines are ``<hex>  <name>`` (coreutils style,
    names with newlines or backslashes escaped and the line marked with a leading ``\\``);
    otherwise one line per input name, in order, ``-`` for an unreadable file."""
    lines = output.split(b"\n")
    result: dict[str, str] = {}
    if not by_name:
        for rel, line in zip(names, lines, strict=False):
            text = line.decode("ascii", "replace").strip()
            if text and text != "-":
                result[rel] = text
        return result
    for line in lines:
        if not line:
            continue
        escaped = line.startswith(b"\\")
        if escaped:
            line = line[1:]
        digest, sep, raw_name = line.partition(b"  ")
        if not sep:
            digest, sep, raw_name = line.partition(b" *")
        if escaped:
            raw_name = _unescape(raw_name)
        rel = os.fsdecode(raw_name)
        result[rel[2:] if rel.startswith("./") else rel] = digest.decode("ascii", "replace")
    return result


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x5C and i + 1 < len(raw):
            nxt = raw[i + 1]
            out.append({0x6E: 0x0A, 0x72: 0x0D, 0x5C: 0x5C}.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


def names_input(names: list[str]) -> bytes:
    return b"".join(b"./" + os.fsencode(rel) + b"\0" for rel in names)

