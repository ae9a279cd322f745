"""What one side of a sync holds: files, folders and links by relative path, plus our temp files.

Relative paths use ``/`` and are ``str`` decoded with the filesystem encoding (undecodable bytes
kept as surrogates), so a name read on one side is written byte-for-byte on the other.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["f", "d", "l"]

PART_SUFFIX = ".part"
STAGE_PREFIX = ".gputui-stage."
# Temp files: `.<name>.<12 hex>.part` next to the final file; batch stages: a folder at the root.
PART_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<id>[0-9a-f]{12})\.part$", re.DOTALL)
STAGE_NAME = re.compile(r"^\.gputui-stage\.[0-9a-f]{12}\.part$")
MAX_NAME_IN_PART = 200  # keeps `.<name>.<id>.part` under the usual 255-byte name limit


@dataclass(frozen=True, slots=True)
class Entry:
    """One file, folder or symlink. ``mtime`` is in whole seconds, as the quick check compares."""

    kind: Kind
    size: int
    mtime: int
    mode: int
    target: str = ""

    def same_as(self, other: Entry) -> bool:
        """rsync's quick check for files; same target for links; any folder matches a folder."""
        if self.kind != other.kind:
            return False
        if self.kind == "f":
            return self.size == other.size and self.mtime == other.mtime
        if self.kind == "l":
            return self.target == other.target
        return True


@dataclass
class Manifest:
    """One side's tree. ``root_kind`` says what is at the root path itself."""

    root_kind: Literal["d", "f", "l", "missing", "other"]
    entries: dict[str, Entry] = field(default_factory=dict)
    parts: dict[str, int] = field(default_factory=dict)  # rel path of a .part → its size
    stages: list[str] = field(default_factory=list)
    tools: frozenset[str] = frozenset()
    root: str = ""  # the absolute path that was listed (the host resolves ~ and relative paths)
    excluded: list[str] = field(default_factory=list)  # top-most entries the excludes removed

    def add(self, rel: str, entry: Entry) -> None:
        """File an entry, setting our own temp files and stages (and their contents) aside."""
        if rel.startswith(STAGE_PREFIX):
            first, slash, _ = rel.partition("/")
            if STAGE_NAME.match(first):
                if not slash and entry.kind == "d":
                    self.stages.append(rel)
                return
        name = rel.rpartition("/")[2]
        if (
            entry.kind == "f"
            and name.endswith(PART_SUFFIX)
            and name.startswith(".")
            and PART_NAME.match(name)
        ):
            self.parts[rel] = entry.size
            return
        self.entries[rel] = entry


def part_name(rel: str, entry: Entry) -> str:
    """The temp path for ``rel``: the same folder, a name that also says which version it holds.

    Binding the source size and mtime into the name makes a leftover from an older version of
    the file stale (deleted), never resumed.
    """
    folder, _, name = rel.rpartition("/")
    raw = os.fsencode(name)
    digest = hashlib.sha1(
        raw + b"\0" + str(entry.size).encode() + b"\0" + str(entry.mtime).encode()
    ).hexdigest()[:12]
    short = os.fsdecode(raw[:MAX_NAME_IN_PART]) if len(raw) > MAX_NAME_IN_PART else name
    temp = f".{short}.{digest}{PART_SUFFIX}"
    return f"{folder}/{temp}" if folder else temp


def stage_name(token: str) -> str:
    return f"{STAGE_PREFIX}{token}{PART_SUFFIX}"


def is_safe_relative(rel: str) -> bool:
    """A path that stays inside the root: no absolute path, no ``..``, no empty part, no NUL."""
    if not rel or rel.startswith("/") or "\0" in rel:
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))
