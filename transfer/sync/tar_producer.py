"""A batch of small files as one tar stream, built chunk by chunk in a worker thread.

Each file is read through one descriptor (no link followed) and checked unchanged around the
read: a file that changed is left out of the stream and sent again in a later batch.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

from transfer.sync.context import Context
from transfer.sync.manifest import Entry
from transfer.sync.tarstream import END, member, padding

#: Opens a source file for reading, refusing a link that took the file's place.
READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


@dataclass
class BatchOutcome:
    """What one batch sent, what changed while it was read, and what could not be read."""

    sent: list[tuple[str, Entry]] = field(default_factory=list)
    changed: list[tuple[str, Entry]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


class TarProducer:
    """Builds a batch's tar stream chunk by chunk, reading files in a worker thread."""

    def __init__(self, ctx: Context, items: list[tuple[str, Entry]]) -> None:
        self._ctx = ctx
        self._items = items
        self._next = 0
        self._ended = False
        self.outcome = BatchOutcome()

    def next_chunk(self, target: int) -> tuple[bytes, int, int, str] | None:
        """Up to about ``target`` bytes of stream: (data, files, content bytes, last name).

        The pieces are joined once: each copy of 100 MB of small files costs real time here.
        """
        if self._ended:
            return None
        pieces: list[bytes] = []
        length = files = content = 0
        name = ""
        items, record = self._items, self._record
        while length < target and self._next < len(items):
            rel, entry = items[self._next]
            self._next += 1
            added = record(rel, entry, pieces)
            if added < 0:
                continue
            length += added
            files += 1
            content += self.outcome.sent[-1][1].size
            name = rel
        if self._next >= len(items):
            pieces.append(END)
            self._ended = True
        return b"".join(pieces), files, content, name

    def _record(self, rel: str, entry: Entry, pieces: list[bytes]) -> int:
        """Append one member's records to ``pieces``; their length, or -1 when it is left out."""
        path = self._ctx.local_path(self._ctx.source_rel(rel))
        name = os.fsencode(rel)
        if entry.kind == "l":
            try:
                target = os.readlink(path)
            except OSError:
                self.outcome.problems.append((rel, "vanished before it could be sent"))
                return -1
            self.outcome.sent.append((rel, Entry("l", 0, entry.mtime, entry.mode, target)))
            header = member(name, 0, 0o777, entry.mtime, kind=b"2", link=os.fsencode(target))
            pieces.append(header)
            return len(header)
        try:
            fd = os.open(path, READ_FLAGS)
        except FileNotFoundError:
            self.outcome.problems.append((rel, "vanished before it could be sent"))
            return -1
        except OSError as exc:
            reason = (
                "turned into a link while being sent; run again to send the link"
                if exc.errno == errno.ELOOP
                else f"cannot read it: {exc.strerror}"
            )
            self.outcome.problems.append((rel, reason))
            return -1
        try:
            before = os.fstat(fd)
            data = os.read(fd, before.st_size + 1)
            after = os.fstat(fd)
        except OSError as exc:
            self.outcome.problems.append((rel, f"cannot read it: {exc.strerror}"))
            return -1
        finally:
            os.close(fd)
        if (
            before.st_mtime_ns != after.st_mtime_ns
            or before.st_size != after.st_size
            or len(data) != after.st_size
            or not stat.S_ISREG(after.st_mode)
        ):
            self.outcome.changed.append((rel, entry))
            return -1
        size = len(data)
        sent = Entry("f", size, after.st_mtime_ns // 1_000_000_000, stat.S_IMODE(after.st_mode))
        self.outcome.sent.append((rel, sent))
        header = member(name, size, sent.mode, sent.mtime)
        pad = padding(size)
        pieces += (header, data, pad)
        return len(header) + size + len(pad)
