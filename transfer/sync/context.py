"""What the push and pull executors share during one attempt of a sync."""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from transfer.errors import GputuiError
from transfer.link import Link
from transfer.sync.bwlimit import TokenBucket
from transfer.sync.events import FileProblem, SyncEvent
from transfer.sync.progress import ProgressTracker
from transfer.sync.remote import RemoteShell
from transfer.sync.verify import choose_hash, hash_local, parse_single_hash, prefix_hash_command

# Files up to this size travel in tar batches; bigger ones get a stream of their own.
SMALL_FILE_LIMIT = 1 << 20
BATCH_BYTES = 256 << 20
BATCH_MIN_BYTES = 32 << 20
BATCH_FILES = 20000
BATCH_MIN_FILES = 64
# Two tar streams: the host creates files in two processes at once (creating a file costs the
# host's kernel far more than moving its bytes), while one stream would leave a core idle.
BATCH_STREAMS = 2
FILE_STREAMS = 3
CHUNK = 1 << 20
CHANGED_RETRIES = 3
# Command lines stay well under ARG_MAX and the SSH packet limit.
SCRIPT_LIMIT = 96 * 1024


@dataclass
class Totals:
    """Counts that survive a reconnect: a retried attempt adds to them."""

    files_sent: int = 0
    bytes_sent: int = 0
    resumed_bytes: int = 0
    deleted: int = 0
    problems: list[FileProblem] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


@dataclass
class Context:
    link: Link
    shell: RemoteShell
    local_root: str
    remote_root: str
    tools: frozenset[str]
    progress: ProgressTracker
    totals: Totals
    emit: Callable[[SyncEvent], None]
    bucket: TokenBucket | None = None
    source_names: dict[str, str] = field(default_factory=dict)
    small_file_limit: int = SMALL_FILE_LIMIT
    file_streams: int = FILE_STREAMS
    batch_streams: int = BATCH_STREAMS
    mode_mask: int = 0o7777  # the source mode bits the destination keeps

    async def same_prefix(self, remote_path: str, local: str | int, size: int) -> bool:
        """Whether the first ``size`` bytes of the host's file and of ``local`` (a path or an
        open descriptor) hash the same: what lets an interrupted file continue, either way."""
        name = choose_hash(self.tools)
        try:
            command = prefix_hash_command(remote_path, size, name, self.tools, self.host)
        except GputuiError:
            return False
        remote, digest = await asyncio.gather(
            self.shell.run(command, doing="checking a partial file"),
            asyncio.to_thread(hash_local, local, name, size),
        )
        status, output, _ = remote
        return status == 0 and parse_single_hash(output) == digest

    @property
    def host(self) -> str:
        return self.link.host.name

    def source_rel(self, rel: str) -> str:
        """Where the file named ``rel`` on the destination is on the source side."""
        return self.source_names.get(rel, rel)

    def local_path(self, rel: str) -> str:
        return f"{self.local_root.rstrip('/')}/{rel}" if self.local_root != "/" else f"/{rel}"

    def remote_path(self, rel: str) -> str:
        return f"{self.remote_root.rstrip('/')}/{rel}" if self.remote_root != "/" else f"/{rel}"

    def problem(self, rel: str, reason: str) -> None:
        problem = FileProblem(rel, reason)
        self.totals.problems.append(problem)
        self.emit(problem)

    def chunk_size(self) -> int:
        return self.bucket.chunk_size(CHUNK) if self.bucket else CHUNK

    async def throttle(self, amount: int) -> None:
        if self.bucket is not None:
            await self.bucket.take(amount)


def dot(rel: str) -> str:
    """A relative path as a safe shell word: ``./`` keeps a leading dash from being an option."""
    return shlex.quote("./" + rel)


def scripts_for(prefix: str, command: str, paths: list[str]) -> list[str]:
    """``cd ROOT && COMMAND ./a ./b …`` split into scripts of bounded length."""
    scripts: list[str] = []
    words: list[str] = []
    length = 0
    for rel in paths:
        word = dot(rel)
        if words and length + len(word) > SCRIPT_LIMIT:
            scripts.append(f"{prefix}{command} {' '.join(words)}")
            words, length = [], 0
        words.append(word)
        length += len(word) + 1
    if words:
        scripts.append(f"{prefix}{command} {' '.join(words)}")
    return scripts


def clamp_mtime(mtime: int) -> int:
    """An mtime every filesystem and ``touch`` takes: years 1900 … 9999."""
    return min(max(mtime, -2208988800), 253402300799)


def touch_stamp(mtime: int) -> str:
    """``touch -t`` form (``CCYYMMDDhhmm.SS``, read as UTC with ``TZ=UTC0``)."""
    return time.strftime("%Y%m%d%H%M.%S", time.gmtime(clamp_mtime(mtime)))

