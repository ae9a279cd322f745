"""Pull: host → this machine.

Small files come in tar batches written by the host's ``tar`` and read here by ``tarfile`` in a
worker thread; each member lands in a ``.part`` file and the whole batch is renamed into place
once the host's ``tar`` has finished without complaint. Big files stream over a channel each
(``cat``, or ``tail -c +N`` to resume) into a ``.part``; the host copy is re-checked after the
last byte, and only then are mode and mtime set and the ``.part`` renamed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import shlex
import shutil
import tarfile
from dataclasses import dataclass, field

from transfer.errors import GputuiError, RemoteFileNotFound
from transfer.sync.context import CHANGED_RETRIES, Context, dot
from transfer.sync.errors import NoSpaceLeft, PermissionDeniedError, failure_from_stderr
from transfer.sync.manifest import PART_NAME, Entry, is_safe_relative, part_name
from transfer.sync.plan import SyncPlan
from transfer.sync.push import _split, _writable
from transfer.sync.remote import RemoteProcess
from transfer.sync.tarstream import QueueReader
from transfer.sync.tasks import each_concurrently, run_together
from transfer.sync.verify import choose_hash, hash_local, parse_single_hash, prefix_hash_command

WRITE_BATCH = 4 << 20
_STAT_LINE = re.compile(rb"^gputui-stat (\d+) (-?\d+)$", re.MULTILINE)
_CHANGED_LINE = re.compile(rb"^tar: (.*): file changed as we read it$", re.MULTILINE)


class _SourceChanged(Exception):
    pass


def local_error(exc: OSError, path: str) -> GputuiError:
    """An OSError on this machine as the one-line error a person can act on (naming the file
    a ``.part`` stands for, not the temp name)."""
    folder, _, name = path.rpartition("/")
    temp = PART_NAME.match(name)
    if temp is not None:
        path = f"{folder}/{temp.group('name')}" if folder else temp.group("name")
    where = f"local:{path}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpaceLeft(f"no space left on {where}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDeniedError(f"permission denied on {where}")
    return GputuiError(f"cannot write {where}: {exc.strerror or exc}")


@dataclass
class _Landed:
    """A batch member written to its ``.part``, waiting for the batch to end well."""

    rel: str
    part: str
    final: str
    entry: Entry


@dataclass
class _BatchState:
    expected: dict[str, Entry]
    landed: list[_Landed] = field(default_factory=list)


class PullExecutor:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._cd = f"cd -- {shlex.quote(ctx.remote_root)} && "
        self._dest_names = {source: dest for dest, source in ctx.source_names.items()}

    def _where(self, rel: str = "") -> str:
        return f"{self.ctx.host}:{self.ctx.remote_path(rel) if rel else self.ctx.remote_root}"

    async def execute(self, plan: SyncPlan, *, root_exists: bool = True) -> None:
        await asyncio.to_thread(self._prepare, plan)
        self.ctx.totals.deleted += plan.extraneous
        await self._transfer(plan.files, plan.links, plan.resume)
        if "tar" not in self.ctx.tools and plan.links:
            await asyncio.to_thread(self._make_links, plan.links)
        locked = [(r, m) for r, m in plan.mkdirs + plan.chmods if not _writable(m)]
        if locked:
            await asyncio.to_thread(self._chmod_all, locked)

    async def resend(self, files: list[tuple[str, Entry]]) -> None:
        """Fetch these again whatever the quick check says (after a --verify mismatch)."""
        await self._transfer(files, [], {})

    def _prepare(self, plan: SyncPlan) -> None:
        root = self.ctx.local_root
        try:
            os.makedirs(root, exist_ok=True)
            for rel in plan.cleanup + plan.delete:
                path = self.ctx.local_path(rel)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
            for rel, mode in plan.mkdirs:
                path = self.ctx.local_path(rel)
                os.makedirs(path, exist_ok=True)
                os.chmod(path, mode | 0o300)
        except OSError as exc:
            raise local_error(exc, exc.filename or root) from None
        self._chmod_all([(r, m) for r, m in plan.chmods if _writable(m)])

    def _make_links(self, links: list[tuple[str, Entry]]) -> None:
        """Without tar on the host, links are made here from what the listing said."""
        for rel, entry in links:
            part = self.ctx.local_path(part_name(rel, entry))
            try:
                _unlink_quietly(part)
                os.symlink(entry.target, part)
                _place(part, self.ctx.local_path(rel), entry)
            except OSError as exc:
                raise local_error(exc, self.ctx.local_path(rel)) from None
        self.ctx.totals.files_sent += len(links)

    def _chmod_all(self, items: list[tuple[str, int]]) -> None:
        try:
            for rel, mode in items:
                os.chmod(self.ctx.local_path(rel), mode, follow_symlinks=False)
        except OSError as exc:
            raise local_error(exc, exc.filename or self.ctx.local_root) from None

    async def _transfer(
        self,
        files: list[tuple[str, Entry]],
        links: list[tuple[str, Entry]],
        resume: dict[str, int],
    ) -> None:
        batches, big = _split(self.ctx, files, links, resume)
        await run_together(
            [
                each_concurrently(batches, self.ctx.batch_streams, self._fetch_batch),
                each_concurrently(
                    big,
                    self.ctx.file_streams,
                    lambda item: self._fetch_file(item[0], item[1], resume.get(item[0], 0)),
                ),
            ]
        )

    async def _fetch_batch(self, items: list[tuple[str, Entry]]) -> None:
        for attempt in range(CHANGED_RETRIES + 1):
            changed = await self._one_batch(items)
            if not changed:
                return
            self.ctx.totals.changed += [rel for rel, _ in changed]
            items = changed
            if attempt == CHANGED_RETRIES:
                for rel, _ in items:
                    self.ctx.problem(rel, "kept changing while being sent; not stored")

    async def _one_batch(self, items: list[tuple[str, Entry]]) -> list[tuple[str, Entry]]:
        """Fetch one batch; returns the members the host's tar saw changing (to fetch again)."""
        ctx = self.ctx
        state = _BatchState(expected=dict(items))
        reader = QueueReader(maxsize=2)  # whole windows: see RECEIVE_WINDOW
        size = sum(e.size for _, e in items)
        token = ctx.progress.start_file(f"{len(items)} files", size)
        process = await ctx.shell.start(
            f"{self._cd}tar -c -f - --null --no-recursion -T -", doing="fetching a batch of files"
        )
        unpacking = asyncio.ensure_future(asyncio.to_thread(self._unpack, reader, state))
        names = b"".join(
            b"./" + os.fsencode(ctx.source_rel(rel)) + b"\0" for rel, _ in items
        )
        failed = True
        try:
            feeding = asyncio.ensure_future(_feed_names(process, names))
            while True:
                data = await process.read(ctx.shell.receive_window)
                if not data:
                    break
                await ctx.throttle(len(data))
                await asyncio.to_thread(reader.feed, data)
                ctx.progress.advance(token, len(data))
            await feeding
            status, stderr = await process.finish()
            await asyncio.to_thread(reader.feed, None)
            unpacked = await asyncio.gather(unpacking, return_exceptions=True)
            if isinstance(unpacked[0], BaseException):
                raise unpacked[0]
            failed = False
        finally:
            ctx.progress.drop_file(token)
            if failed:
                process.abort()
                reader.abandon()
                await asyncio.gather(unpacking, return_exceptions=True)
                await asyncio.to_thread(_discard, state.landed)
        changed_names = {
            self._dest_names.get(name, name)
            for name in (_strip_dot(os.fsdecode(m)) for m in _CHANGED_LINE.findall(stderr))
        }
        if status not in (0, 1) or (status == 1 and not changed_names):
            await asyncio.to_thread(_discard, state.landed)
            raise failure_from_stderr(stderr, self._where(), "packing files")
        keep = [landed for landed in state.landed if landed.rel not in changed_names]
        drop = [landed for landed in state.landed if landed.rel in changed_names]
        await asyncio.to_thread(_discard, drop)
        try:
            await asyncio.to_thread(_place_all, keep)
        except OSError as exc:
            raise local_error(exc, exc.filename or ctx.local_root) from None
        ctx.totals.files_sent += len(keep)
        ctx.totals.bytes_sent += sum(landed.entry.size for landed in keep)
        ctx.progress.files_done += len(keep)
        got = {landed.rel for landed in state.landed}
        for rel in state.expected:
            if rel not in got:
                ctx.problem(rel, "vanished on the host before it could be fetched")
        return [(rel, state.expected[rel]) for rel in sorted(changed_names) if rel in got]

    def _unpack(self, reader: QueueReader, state: _BatchState) -> None:
        """Read the tar stream (worker thread); every member goes to a ``.part`` file."""
        try:
            with tarfile.open(fileobj=reader, mode="r|", errorlevel=2) as archive:  # type: ignore[call-overload]
                for info in archive:
                    self._unpack_member(archive, info, state)
        except OSError as exc:
            raise local_error(exc, exc.filename or self.ctx.local_root) from None
        except tarfile.TarError as exc:
            raise GputuiError(f"the file stream from {self.ctx.host} broke off: {exc}") from None
        finally:
            reader.drain()

    def _unpack_member(
        self, archive: tarfile.TarFile, info: tarfile.TarInfo, state: _BatchState
    ) -> None:
        rel = _strip_dot(info.name)
        rel = self._dest_names.get(rel, rel)
        planned = state.expected.get(rel)
        if planned is None or not is_safe_relative(rel):
            raise GputuiError(f"{self.ctx.host} sent a file that was not asked for: {rel!r}")
        entry = Entry(
            "l" if info.issym() else "f",
            info.size if info.isreg() else 0,
            int(info.mtime),
            info.mode & 0o7777,
            info.linkname if info.issym() else "",
        )
        final = self.ctx.local_path(rel)
        part = self.ctx.local_path(part_name(rel, entry))
        if info.issym():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            os.symlink(info.linkname, part)
        elif info.isreg():
            source = archive.extractfile(info)
            assert source is not None
            with open(part, "wb") as out:
                while chunk := source.read(WRITE_BATCH):
                    out.write(chunk)
        else:
            return
        state.landed.append(_Landed(rel, part, final, entry))

    async def _fetch_file(self, rel: str, entry: Entry, resume_size: int) -> None:
        ctx = self.ctx
        for _attempt in range(CHANGED_RETRIES + 1):
            part = ctx.local_path(part_name(rel, entry))
            offset = await self._resume_offset(rel, entry, part, resume_size)
            try:
                await self._stream(rel, entry, part, offset)
            except _SourceChanged:
                ctx.totals.changed.append(rel)
                await asyncio.to_thread(_unlink_quietly, part)
                try:
                    now = await ctx.link.stat(
                        ctx.remote_path(ctx.source_rel(rel)), follow_symlinks=False
                    )
                except RemoteFileNotFound:
                    ctx.problem(rel, "vanished on the host before it could be fetched")
                    return
                entry = Entry("f", now.size, int(now.mtime), now.mode & 0o7777)
                resume_size = 0
                continue
            try:
                await asyncio.to_thread(_place, part, ctx.local_path(rel), entry)
            except OSError as exc:
                raise local_error(exc, ctx.local_path(rel)) from None
            ctx.totals.files_sent += 1
            ctx.totals.bytes_sent += entry.size - offset
            ctx.totals.resumed_bytes += offset
            ctx.progress.finish_file(None)
            return
        ctx.problem(rel, "kept changing while being sent; not stored")

    async def _resume_offset(self, rel: str, entry: Entry, part: str, size: int) -> int:
        if size <= 0 or size > entry.size:
            return 0
        ctx = self.ctx
        name = choose_hash(ctx.tools)
        try:
            command = prefix_hash_command(
                ctx.remote_path(ctx.source_rel(rel)), size, name, ctx.tools, ctx.host
            )
        except GputuiError:
            return 0
        remote, local = await asyncio.gather(
            ctx.shell.run(command, doing="checking a partial file"),
            asyncio.to_thread(hash_local, part, name, size),
        )
        status, output, _ = remote
        if status != 0 or parse_single_hash(output) != local:
            return 0
        return size

    async def _stream(self, rel: str, entry: Entry, part: str, offset: int) -> None:
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
            try:
                fd = await asyncio.to_thread(_open_part, part, offset)
            except OSError as exc:
                raise local_error(exc, part) from None
            try:
                received = await self._drain_into(process, fd, token)
            finally:
                os.close(fd)
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

    async def _drain_into(self, process: RemoteProcess, fd: int, token: int) -> int:
        """Copy stdout into ``fd``: the network read and the disk write overlap."""
        ctx = self.ctx
        received = 0
        # Under --bwlimit every read goes to disk at once: a cut connection then loses little.
        batch = ctx.chunk_size() if ctx.bucket else WRITE_BATCH
        writing: asyncio.Future[None] | None = None
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
                    ctx.progress.advance(token, len(data))
                if pending_size >= batch or (not data and pending):
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(asyncio.to_thread(_write_all, fd, pending))
                    pending, pending_size = [], 0
                if not data:
                    break
            if writing is not None:
                await writing
                writing = None
        except OSError as exc:
            raise local_error(exc, "the destination") from None
        finally:
            if writing is not None:
                writing.cancel()
                with contextlib.suppress(BaseException):
                    await writing
        return received


async def _feed_names(process: RemoteProcess, names: bytes) -> None:
    await process.write(names)
    await process.write_eof()


def _strip_dot(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def _open_part(path: str, offset: int) -> int:
    """The ``.part`` to write from ``offset`` on. A fresh file is never truncated: ext4 flushes
    a file truncated to zero and rewritten when it is closed, which costs a second per GiB."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    if offset == 0:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        flags |= os.O_EXCL
    fd = os.open(path, flags, 0o600)
    if offset and os.fstat(fd).st_size != offset:
        os.ftruncate(fd, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return fd


def _write_all(fd: int, chunks: list[bytes]) -> None:
    """``writev`` the chunks, continuing after a short write."""
    views = [memoryview(c) for c in chunks]
    while views:
        written = os.writev(fd, views[:1024])
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def _place(part: str, final: str, entry: Entry) -> None:
    """Mode and mtime on the ``.part``, then the atomic rename onto the final name."""
    if entry.kind == "f":
        os.chmod(part, entry.mode)
        ns = entry.mtime * 1_000_000_000
        os.utime(part, ns=(ns, ns))
    if os.path.isdir(final) and not os.path.islink(final):
        shutil.rmtree(final)
    os.replace(part, final)


def _place_all(landed: list[_Landed]) -> None:
    for item in landed:
        _place(item.part, item.final, item.entry)


def _discard(landed: list[_Landed]) -> None:
    for item in landed:
        _unlink_quietly(item.part)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


