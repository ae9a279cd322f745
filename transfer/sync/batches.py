"""How a plan's files travel, for push and pull alike: small files in batches, big ones alone.

Also the folder-mode rules both directions share: a folder is created writable for us and gets
a mode that would lock us out only once everything is inside.
"""

from __future__ import annotations

from transfer.sync.context import (
    BATCH_BYTES,
    BATCH_FILES,
    BATCH_MIN_BYTES,
    BATCH_MIN_FILES,
    Context,
)
from transfer.sync.manifest import Entry


def split_files(
    ctx: Context,
    files: list[tuple[str, Entry]],
    links: list[tuple[str, Entry]],
    resume: dict[str, int],
) -> tuple[list[list[tuple[str, Entry]]], list[tuple[str, Entry]]]:
    """Small files and links into batches; big (or resumable) files on streams of their own,
    biggest first so that the longest stream starts first. Without tar on the host every file
    streams on its own (links are then made apart)."""
    limit = ctx.small_file_limit if "tar" in ctx.tools else -1
    small = [(r, e) for r, e in files if e.size <= limit and r not in resume]
    if "tar" in ctx.tools:
        small += links
    big = sorted(
        ((r, e) for r, e in files if e.size > limit or r in resume), key=lambda item: -item[1].size
    )
    return batches(small, ctx.batch_streams), big


def open_mode(mode: int) -> int:
    """A folder mode to create a folder with: ours to fill, its own mode set at the end."""
    return mode if writable(mode) else mode | 0o300


def writable(mode: int) -> bool:
    """A folder mode that still lets us put files in (owner write and search)."""
    return mode & 0o300 == 0o300


def ancestors_in(rels: list[str], folders: dict[str, int]) -> set[str]:
    """The folders among ``folders`` that hold any of ``rels``."""
    found: set[str] = set()
    if not folders:
        return found
    for rel in rels:
        at = rel.find("/")
        while at != -1:
            folder = rel[:at]
            if folder in folders:
                found.add(folder)
            at = rel.find("/", at + 1)
    return found


def batches(items: list[tuple[str, Entry]], streams: int) -> list[list[tuple[str, Entry]]]:
    """About one batch per stream for a moderate tree (each command start costs a round trip
    and the host's login shell); bounded so an interrupted batch loses little."""
    total = sum(e.size for _, e in items)
    per_bytes = min(max(total // max(streams, 1) + 1, BATCH_MIN_BYTES), BATCH_BYTES)
    per_files = min(max(len(items) // max(streams, 1) + 1, BATCH_MIN_FILES), BATCH_FILES)
    batches: list[list[tuple[str, Entry]]] = []
    current: list[tuple[str, Entry]] = []
    size = 0
    for rel, entry in sorted(items):
        if current and (size + entry.size > per_bytes or len(current) >= per_files):
            batches.append(current)
            current, size = [], 0
        current.append((rel, entry))
        size += entry.size
    if current:
        batches.append(current)
    return batches
