"""Big files of a pull: a channel each, straight into a ``.part`` on this machine.

The host's ``cat`` (or ``tail -c +N`` to resume) sends the bytes; the network read and the
disk write overlap; after the last byte the same command reports the host file's size and
mtime, and only when they are still those listed are mode and mtime set on the ``.part``'s
descriptor and the ``.part`` renamed into place. A ``.part`` an interrupted pull left is
resumed once its prefix hashes the same on both ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re

from transfer.errors import RemoteFileNotFound
from transfer.sync.context import CHANGED_RETRIES, Context, dot
from transfer.sync.destination import (
    IN_THE_WAY,
    LocalTree,
    discard_quietly,
    finish_file,
    local_error,
    writing,
)
from transfer.sync.errors import failure_from_stderr
from transfer.sync.manifest import Entry
from transfer.sync.remote import RemoteProcess

WRITE_BATCH = 4 << 20
_STAT_LINE = re.compile(rb"^gputui-stat (\d+) (-?\d+)$", re.MULTILINE)


class _SourceChanged(Exception):
    pass


class FileFetcher:
    """Fetches the big files of one pull into ``tree`` (the ``cd`` prefix enters the host's
    source folder)."""

    def __init__(self, ctx: Context, tree: LocalTree, cd: str) -> None:
        self.ctx = ctx
        self.tree = tree
        self._cd = cd
        self.resume_parts: dict[str, str] = {}  # rel → the .part the plan found to resume

    def _where(self, rel: str) -> str:
        return f"{self.ctx.host}:{self.ctx.remote_path(rel)}"

    async def fetch(self, rel: str, entry: Entry, resume_size: int) -> None:
        """Fetch one file (resuming its ``.part`` when ``resume_size`` checks out), fetching
        it again from scratch when the host's copy changed meanwhile."""
        ctx = self.ctx
        resume_part = self.resume_parts.get(rel, "") if resume_size else ""
        for _attempt in range(CHANGED_RETRIES + 1):
            part, fd, offset = await self._part_for(rel, entry, resume_part, resume_size)
            resume_part, resume_size = "", 0  # a version fetched again starts afresh
            changed = False
            try:
                await self._stream(rel, entry, fd, offset)
                with writing(self.tree, rel):
                    mode = entry.mode & ctx.mode_mask
                    await asyncio.to_thread(finish_file, fd, mode, entry.mtime)
            except _SourceChanged:
                changed = True
            finally:
                os.close(fd)
            if changed:
                ctx.totals.changed.append(rel)
                await asyncio.to_thread(discard_quietly, self.tree, part)
                try:
                    now = await ctx.link.stat(
                        ctx.remote_path(ctx.source_rel(rel)), follow_symlinks=False
                    )
                except RemoteFileNotFound:
                    ctx.problem(rel, "vanished on the host before it could be fetched")
                    return
                if now.is_dir or now.is_symlink:
                    ctx.problem(rel, "is no longer a file on the host; not stored")
                    return
                entry = Entry("f", now.size, int(now.mtime), now.mode & 0o7777)
                continue
            with writing(self.tree, rel):
                try:
                    await asyncio.to_thread(self.tree.place, part, rel)
                except IsADirectoryError:
                    await asyncio.to_thread(discard_quietly, self.tree, part)
                    ctx.problem(rel, IN_THE_WAY)
                    return
            ctx.totals.files_sent += 1
            ctx.totals.bytes_sent += entry.size - offset
            ctx.totals.resumed_bytes += offset
            ctx.progress.finish_file(None)
            return
        ctx.problem(rel, "kept changing while being sent; not stored")

    async def _part_for(
        self, rel: str, entry: Entry, resume_part: str, resume_size: int
    ) -> tuple[str, int, int]:
        """``(part, descriptor, offset)``: the ``.part`` to resume when its prefix checks
        out, else a new one."""
        tree = self.tree
        with writing(self.tree, rel):
            if resume_part and 0 < resume_size <= entry.size:
                fd = await asyncio.to_thread(tree.open_part, resume_part)
                if fd is not None:
                    offset = await self._resume_offset(rel, fd, resume_size)
                    if offset:
                        await asyncio.to_thread(_seek_to, fd, offset)
                        return resume_part, fd, offset
                    os.close(fd)
                await asyncio.to_thread(discard_quietly, self.tree, resume_part)
            part, new = await asyncio.to_thread(tree.new_part, rel, entry)
            return part, new, 0

    async def _resume_offset(self, rel: str, fd: int, size: int) -> int:
        """``size`` when the first ``size`` bytes of the open ``.part`` hash the same as the
        host's file, else 0."""
        ctx = self.ctx
        remote = ctx.remote_path(ctx.source_rel(rel))
        return size if await ctx.same_prefix(remote, fd, size) else 0

    async def _stream(self, rel: str, entry: Entry, fd: int, offset: int) -> None:
        """The host's bytes from ``offset`` on into ``fd``; raises ``_SourceChanged`` when the
        host's file is not the version listed any more."""
        ctx = self.ctx
        reader = f"tail -c +{offset + 1}" if offset else "cat"
        source = dot(ctx.source_rel(rel))
        # The host copy is re-checked after the last byte, in the same command (on stderr).
        script = (
            f"{self._cd}{reader} -- {source} && printf 'gputui-stat %s\\n' "
            f"\"$(stat -c '%s %Y' -- {source} 2>/dev/null || stat -f '%z %m' -- {source})\" >&2"
        )
        process = await ctx.shell.start(script, doing=f"fetching {rel}")
        token = ctx.progress.start_file(rel, entry.size, done=offset)
        try:
            received = await self._drain_into(process, fd, token, rel, entry.size - offset)
            status, stderr = await process.finish()
        except BaseException:
            process.abort()
            raise
        finally:
            ctx.progress.drop_file(token)
        if status != 0:
            if b"No such file" in stderr:
                raise _SourceChanged(rel)
            raise failure_from_stderr(stderr, self._where(rel), "reading")
        if offset + received != entry.size:
            raise _SourceChanged(rel)
        found = _STAT_LINE.search(stderr)
        if found is not None:
            size, mtime = int(found.group(1)), int(found.group(2))
        else:
            now = await ctx.link.stat(ctx.remote_path(ctx.source_rel(rel)), follow_symlinks=False)
            size, mtime = now.size, int(now.mtime)
        if size != entry.size or mtime != entry.mtime:
            raise _SourceChanged(rel)

    async def _drain_into(
        self, process: RemoteProcess, fd: int, token: int, rel: str, expected: int
    ) -> int:
        """Copy stdout into ``fd``: the network read and the disk write overlap. More than
        ``expected`` bytes means the file is not the version listed (or the host lies about
        it): the stream stops there instead of filling the disk."""
        ctx = self.ctx
        received = 0
        # Under --bwlimit every read goes to disk at once: a cut connection then loses little.
        batch = ctx.chunk_size() if ctx.bucket else WRITE_BATCH
        flushing: asyncio.Future[None] | None = None
        pending: list[bytes] = []
        pending_size = 0
        try:
            while True:
                data = await process.read(ctx.shell.receive_window)
                if data:
                    await ctx.throttle(len(data))
                    pending.append(data)
                    pending_size += len(data)
                    received += len(data)
                    if received > expected:
                        raise _SourceChanged(rel)
                    ctx.progress.advance(token, len(data))
                if pending_size >= batch or (not data and pending):
                    if flushing is not None:
                        await flushing
                    flushing = asyncio.ensure_future(asyncio.to_thread(write_all, fd, pending))
                    pending, pending_size = [], 0
                if not data:
                    break
            if flushing is not None:
                await flushing
                flushing = None
        except OSError as exc:
            raise local_error(exc, self.tree.path(rel)) from None
        finally:
            if flushing is not None:
                flushing.cancel()
                with contextlib.suppress(BaseException):
                    await flushing
        return received


def _seek_to(fd: int, offset: int) -> None:
    """Resume writing at ``offset`` (dropping what lies beyond: it was never checked)."""
    if os.fstat(fd).st_size != offset:
        os.ftruncate(fd, offset)
    os.lseek(fd, offset, os.SEEK_SET)


def write_all(fd: int, chunks: list[bytes]) -> None:
    """``writev`` the chunks, continuing after a short write."""
    views = [memoryview(c) for c in chunks]
    while views:
        written = os.writev(fd, views[:1024])
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]
