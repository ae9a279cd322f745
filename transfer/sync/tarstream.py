"""Tar streams for batches of small files: one channel carries thousands of files.

Pushing, the stream is written here (headers built directly: ``tarfile`` costs several times
more per member) and unpacked on the host by its own ``tar``. Pulling, the host's ``tar``
writes it and ``tarfile`` reads it here, in a worker thread. GNU long-name records carry names
over 100 bytes; names are raw bytes, so newlines, unicode and leading dashes pass untouched.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

BLOCK = 512
_LONG_NAME = b"././@LongLink"


def _number(value: int, width: int) -> bytes:
    """An octal field, or GNU base-256 for what octal cannot hold (huge or negative)."""
    digits = width - 1
    if 0 <= value < 8**digits:
        return b"%0*o\0" % (digits, value)
    raw = value.to_bytes(width, "big", signed=True)
    return bytes([raw[0] | 0x80]) + raw[1:] if value >= 0 else raw


_IDS = b"%07o\0" % 0 * 2  # uid and gid
_MAGIC = b"ustar  \0"  # GNU magic: long names follow the GNU convention
_TAIL = bytes(BLOCK - 265)
_BLANK_SUM = b"        "
_CONSTANT_SUM = sum(_IDS) + sum(_BLANK_SUM) + sum(_MAGIC)


def _header(name: bytes, size: int, mode: int, mtime: int, kind: bytes, link: bytes) -> bytes:
    if 0 <= size < 8**11 and 0 <= mtime < 8**11:
        # The common case in one join (a push of 10,000 small files builds 10,000 of these).
        modes = b"%07o\0" % (mode & 0o7777)
        numbers = b"%011o\0%011o\0" % (size, mtime)
        # The checksum of the block with its own field as spaces: NUL padding adds nothing.
        check = _CONSTANT_SUM + sum(name) + sum(modes) + sum(numbers) + kind[0] + sum(link)
        return b"".join((
            name.ljust(100, b"\0"), modes, _IDS, numbers, b"%06o\0 " % check, kind,
            link.ljust(100, b"\0"), _MAGIC, _TAIL,
        ))
    field = bytearray(BLOCK)
    field[0 : len(name)] = name
    field[100:108] = _number(mode & 0o7777, 8)
    field[108:116] = _number(0, 8)
    field[116:124] = _number(0, 8)
    field[124:136] = _number(size, 12)
    field[136:148] = _number(mtime, 12)
    field[148:156] = _BLANK_SUM
    field[156:157] = kind
    field[157 : 157 + len(link)] = link
    field[257:265] = _MAGIC
    field[148:156] = b"%06o\0 " % sum(field)
    return bytes(field)


def _long_record(kind: bytes, value: bytes) -> bytes:
    data = value + b"\0"
    return _header(_LONG_NAME, len(data), 0, 0, kind, b"") + data + bytes(-len(data) % BLOCK)


def member(
    name: bytes, size: int, mode: int, mtime: int, *, kind: bytes = b"0", link: bytes = b""
) -> bytes:
    """The header record(s) of one member; the caller appends ``size`` bytes and ``padding``."""
    records = b""
    if len(name) > 100:
        records += _long_record(b"L", name)
        name = name[:100]
    if len(link) > 100:
        records += _long_record(b"K", link)
        link = link[:100]
    return records + _header(name, size, mode, mtime, kind, link)


def padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


END = bytes(2 * BLOCK)
POLL_S = 0.1  # how often a blocked side looks whether the other gave up


class QueueReader:
    """A blocking file object fed by chunks from the event loop (``None`` ends it).

    ``tarfile`` reads from it in a worker thread while the loop keeps receiving; the bounded
    queue makes the channel's flow control hold the sender back when the disk is slow. When
    the feeding side gives up (an error, a cancel) it calls ``abandon``: neither side then
    waits on the other any more, so no worker thread is left blocked.
    """

    def __init__(self, maxsize: int = 16) -> None:
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize)
        self._chunk = b""
        self._at = 0
        self._ended = False
        self._abandoned = threading.Event()

    def feed(self, chunk: bytes | None) -> None:
        """Queue a chunk, or the end (``None``); blocks while the queue is full (worker thread)."""
        while not self._abandoned.is_set():
            try:
                self.chunks.put(chunk, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def abandon(self) -> None:
        self._abandoned.set()

    def _next(self) -> bytes | None:
        while True:
            try:
                return self.chunks.get(timeout=POLL_S)
            except queue.Empty:
                if self._abandoned.is_set():
                    return None

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        wanted = size if size >= 0 else 1 << 62
        while wanted > 0:
            if self._at >= len(self._chunk):
                if self._ended:
                    break
                chunk = self._next()
                if chunk is None:
                    self._ended = True
                    break
                self._chunk, self._at = chunk, 0
                continue
            piece = self._chunk[self._at : self._at + wanted]
            self._at += len(piece)
            wanted -= len(piece)
            parts.append(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def drain(self) -> None:
        """Swallow what is left so the feeding side never blocks (after an error here)."""
        while not self._ended:
            if self._next() is None:
                self._ended = True

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)
