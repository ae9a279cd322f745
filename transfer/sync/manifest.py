"""What one side of a sync holds: files, folders and links by relative path, plus our temp files.

Relative paths use ``/`` and are ``str`` decoded with the filesystem encoding (undecodable bytes
kept as surrogates), so a name read on one side is written byte-for-byte on the other.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["f", "d", "l"]

PART_SUFFIX = ".part"
STAGE_PREFIX = ".gputui-stage."
# Temp files: `.<name>.<12 hex version>.<16 hex random>.part` next to the final file (see
# part_name); batch stages of a push: a folder at the root of the host's destination.
PART_NAME = re.compile(
    r"^\.(?P<name>.+)\.(?P<id>[0-9a-f]{12})\.(?P<token>[0-9a-f]{16})\.part$", re.DOTALL
)
_TOKEN_TAIL = 1 + 16 + len(PART_SUFFIX)  # ".<token>.part"
STAGE_NAME = re.compile(r"^\.gputui-stage\.[0-9a-f]{12}\.part$")
MAX_NAME_IN_PART = 200  # keeps `.<name>.<id>.<token>.part` under the usual 255-byte limit


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
    """A new temp path for ``rel``: the same folder, a name that says which version it holds,
    then a random token.

    Binding the source size and mtime into the name makes a leftover from an older version of
    the file stale (deleted), never resumed. The token makes the name unpredictable: nobody can
    plant a link at it beforehand, and a file of the person's that merely looks like a temp
    file (``x.part``, ``.x.<12 hex>.part``) does not match the pattern and is left alone.
    """
    return f"{part_prefix(rel, entry)}.{secrets.token_hex(8)}{PART_SUFFIX}"


def part_prefix(rel: str, entry: Entry) -> str:
    """What every temp path of this version of ``rel`` starts with (all but the token)."""
    folder, _, name = rel.rpartition("/")
    raw = os.fsencode(name)
    digest = hashlib.sha1(
        raw + b"\0" + str(entry.size).encode() + b"\0" + str(entry.mtime).encode()
    ).hexdigest()[:12]
    short = os.fsdecode(raw[:MAX_NAME_IN_PART]) if len(raw) > MAX_NAME_IN_PART else name
    temp = f".{short}.{digest}"
    return f"{folder}/{temp}" if folder else temp


def prefix_of_part(part: str) -> str:
    """The :func:`part_prefix` of a temp path that :func:`part_name` made."""
    return part[:-_TOKEN_TAIL]


def stage_name(token: str) -> str:
    return f"{STAGE_PREFIX}{token}{PART_SUFFIX}"


def is_safe_relative(rel: str) -> bool:
    """A path that stays inside the root: no absolute path, no ``..`` or ``.``, no empty part,
    no NUL. (Called for every entry of a host's listing: kept to a few string operations.)"""
    if not rel or rel[0] == "/" or rel[-1] == "/" or "//" in rel or "\0" in rel:
        return False
    return "." not in rel or _DOT_PART.search(rel) is None


_DOT_PART = re.compile(r"(?:^|/)\.\.?(?:/|$)")
