"""Pull: host → this machine.

Small files come in tar batches written by the host's ``tar`` and read here by ``tarfile`` in a
worker thread; each member lands in a ``.part`` file and the whole batch is renamed into place
once the host's ``tar`` has finished without complaint. Big files stream over a channel each
(``cat``, or ``tail -c +N`` to resume) into a ``.part``; the host copy is re-checked after the
last byte, and only then are mode and mtime set and the ``.part`` renamed.

Nothing the host sends is trusted: a tar member must be a name asked for, of the type the
listing announced; every write goes through ``LocalTree`` (folder descriptors, no link
followed, new ``.part`` files under random names) and modes are masked (``pull_mode_mask``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from transfer.errors import GputuiError
from transfer.sync.batches import split_files, writable
from transfer.sync.context import CHANGED_RETRIES, Context
from transfer.sync.destination import (
    IN_THE_WAY,
    LocalTree,
    discard_quietly,
    finish_file,
    writing,
)
from transfer.sync.errors import UnsafeHostData, failure_from_stderr
from transfer.sync.manifest import Entry, is_safe_relative
from transfer.sync.plan import SyncPlan
from transfer.sync.pull_stream import WRITE_BATCH, FileFetcher, write_all
from transfer.sync.remote import RemoteProcess
from transfer.sync.tarstream import QueueReader
from transfer.sync.tasks import each_concurrently, run_together

_CHANGED_LINE = re.compile(rb"^tar: (.*): file changed as we read it$", re.MULTILINE)
_KINDS = {"f": "a file", "l": "a link", "d": "a folder", "other": "a special file"}
IN_THE_WAY_FOLDER = "the folder in the way is no longer empty; left as it is, nothing stored"


@dataclass
class _Landed:
    """A batch member written to its ``.part``, waiting for the batch to end well."""

    rel: str
    part: str
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
        self.tree = LocalTree(ctx.local_root)
        self._files = FileFetcher(ctx, self.tree, self._cd)

    def _where(self, rel: str = "") -> str:
        return f"{self.ctx.host}:{self.ctx.remote_path(rel) if rel else self.ctx.remote_root}"

    @contextlib.asynccontextmanager
    async def _opened(self) -> AsyncIterator[None]:
        with writing(self.tree, ""):
            await asyncio.to_thread(self.tree.open)
        try:
            yield
        finally:
            await asyncio.to_thread(self.tree.close)

    async def execute(self, plan: SyncPlan, *, root_exists: bool = True) -> None:
        self._files.resume_parts = plan.resume_parts
        async with self._opened():
            blocked = await asyncio.to_thread(self._prepare, plan)
            for rel in blocked:
                self.ctx.problem(rel, IN_THE_WAY_FOLDER)
            files = [(r, e) for r, e in plan.files if r not in blocked]
            links = [(r, e) for r, e in plan.links if r not in blocked]
            self.ctx.totals.deleted += plan.extraneous
            await self._transfer(files, links, plan.resume)
            if "tar" not in self.ctx.tools and links:
                self._report(await asyncio.to_thread(self._make_links, links))
            locked = [(r, m) for r, m in plan.mkdirs + plan.chmods if not writable(m)]
            if locked:
                await asyncio.to_thread(self._set_modes, locked)

    async def resend(self, files: list[tuple[str, Entry]]) -> None:
        """Fetch these again whatever the quick check says (after a --verify mismatch)."""
        async with self._opened():
            await self._transfer(files, [], {})

    def _report(self, blocked: list[str]) -> None:
        for rel in blocked:
            self.ctx.problem(rel, IN_THE_WAY)

    def _prepare(self, plan: SyncPlan) -> set[str]:
        """Removals, then folders and modes (worker thread); returns the empty folders that
        were to make way but hold something by now. (A folder named like a push's stage is
        the person's own here: a pull never makes one.)"""
        tree = self.tree
        for rel in plan.cleanup:
            with writing(tree, rel):
                tree.remove_temp(rel)
        for rel in plan.delete:
            with writing(tree, rel):
                tree.remove(rel)
        blocked = set()
        for rel in plan.rmdirs:
            with writing(tree, rel):
                if not tree.remove_empty_folder(rel):
                    blocked.add(rel)
        tree.forget_folders()
        for rel, mode in plan.mkdirs:
            with writing(tree, rel):
                tree.make_folder(rel, mode if writable(mode) else mode | 0o300)
        self._set_modes([(r, m) for r, m in plan.chmods if writable(m)])
        return blocked

    def _make_links(self, links: list[tuple[str, Entry]]) -> list[str]:
        """Without tar on the host, links are made here from what the listing said."""
        blocked = []
        for rel, entry in links:
            with writing(self.tree, rel):
                part = self.tree.new_link(rel, entry, entry.target)
                try:
                    self.tree.place(part, rel)
                except IsADirectoryError:
                    self.tree.discard(part)
                    blocked.append(rel)
                    continue
            self.ctx.totals.files_sent += 1
        return blocked

    def _set_modes(self, items: list[tuple[str, int]]) -> None:
        for rel, mode in items:
            with writing(self.tree, rel):
                self.tree.set_mode(rel, mode)

    async def _transfer(
        self,
        files: list[tuple[str, Entry]],
        links: list[tuple[str, Entry]],
        resume: dict[str, int],
    ) -> None:
        batches, big = split_files(self.ctx, files, links, resume)
        await run_together(
            [
                each_concurrently(batches, self.ctx.batch_streams, self._fetch_batch),
                each_concurrently(
                    big,
                    self.ctx.file_streams,
                    lambda item: self._files.fetch(item[0], item[1], resume.get(item[0], 0)),
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
                await asyncio.to_thread(self._discard, state.landed)
        changed_names = {
            self._dest_names.get(name, name)
            for name in (_strip_dot(os.fsdecode(m)) for m in _CHANGED_LINE.findall(stderr))
        }
        if status not in (0, 1) or (status == 1 and not changed_names):
            await asyncio.to_thread(self._discard, state.landed)
            raise failure_from_stderr(stderr, self._where(), "packing files")
        keep = [landed for landed in state.landed if landed.rel not in changed_names]
        drop = [landed for landed in state.landed if landed.rel in changed_names]
        await asyncio.to_thread(self._discard, drop)
        blocked = await asyncio.to_thread(self._place_all, keep)
        self._report(blocked)
        placed = [landed for landed in keep if landed.rel not in blocked]
        ctx.totals.files_sent += len(placed)
        ctx.totals.bytes_sent += sum(landed.entry.size for landed in placed)
        ctx.progress.files_done += len(placed)
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
        except tarfile.TarError as exc:
            raise GputuiError(f"the file stream from {self.ctx.host} broke off: {exc}") from None
        finally:
            reader.drain()

    def _unpack_member(
        self, archive: tarfile.TarFile, info: tarfile.TarInfo, state: _BatchState
    ) -> None:
        host = self.ctx.host
        rel = _strip_dot(info.name)
        rel = self._dest_names.get(rel, rel)
        planned = state.expected.get(rel)
        if planned is None or not is_safe_relative(rel):
            raise UnsafeHostData(f"{host} sent a file that was not asked for: {rel!r}")
        if info.islnk():
            return  # a hard link to an earlier member: reported as not fetched
        kind = "l" if info.issym() else "f" if info.isreg() else "other"
        if kind != planned.kind:
            raise UnsafeHostData(
                f"{host} sent {rel!r} as {_KINDS[kind]} where its listing had "
                f"{_KINDS[planned.kind]}; refused"
            )
        entry = Entry(kind, info.size if kind == "f" else 0, int(info.mtime), info.mode & 0o7777)
        with writing(self.tree, rel):
            if kind == "l":
                part = self.tree.new_link(rel, entry, info.linkname)
                state.landed.append(_Landed(rel, part, entry))
                return
            part, fd = self.tree.new_part(rel, entry)
            state.landed.append(_Landed(rel, part, entry))  # discarded if the batch fails
            try:
                source = archive.extractfile(info)
                assert source is not None
                while chunk := source.read(WRITE_BATCH):
                    write_all(fd, [chunk])
                finish_file(fd, entry.mode & self.ctx.mode_mask, entry.mtime)
            finally:
                os.close(fd)

    def _place_all(self, landed: list[_Landed]) -> list[str]:
        """Rename each ``.part`` onto its name; returns those a folder was in the way of."""
        blocked = []
        for item in landed:
            with writing(self.tree, item.rel):
                try:
                    self.tree.place(item.part, item.rel)
                except IsADirectoryError:
                    self.tree.discard(item.part)
                    blocked.append(item.rel)
        return blocked

    def _discard(self, landed: list[_Landed]) -> None:
        for item in landed:
            discard_quietly(self.tree, item.part)


async def _feed_names(process: RemoteProcess, names: bytes) -> None:
    await process.write(names)
    await process.write_eof()


def _strip_dot(name: str) -> str:
    return name[2:] if name.startswith("./") else name
