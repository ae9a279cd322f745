"""Push: this machine → host.

Small files go in tar batches over one channel each: the host's ``tar`` unpacks a batch into a
stage folder inside the destination, and only a complete batch is hard-linked into place
(``cp -l``), so an interrupted batch leaves nothing at a final name. Big files stream over a
channel each into ``.<name>.<id>.part`` next to their final name; mode and mtime are set and
the ``.part`` is renamed only after the source was re-checked unchanged. A ``.part`` left by an
interrupted push is resumed once its prefix hashes the same on both ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shlex
from collections.abc import Iterator

from transfer.sync.batches import ancestors_in, open_mode, split_files, writable
from transfer.sync.context import (
    CHANGED_RETRIES,
    SCRIPT_LIMIT,
    Context,
    dot,
    scripts_for,
    touch_stamp,
)
from transfer.sync.errors import failure_from_stderr
from transfer.sync.manifest import Entry, part_name, stage_name
from transfer.sync.plan import SyncPlan
from transfer.sync.remote import RemoteProcess
from transfer.sync.scan import entry_of_path
from transfer.sync.tar_producer import BatchOutcome, TarProducer
from transfer.sync.tasks import each_concurrently, run_together


class _SourceChanged(Exception):
    """The file changed while it was being read; it is sent again."""


class PushExecutor:
    """Every host command folds in what it needs (the root, new folders, the final rename), so
    a push costs few round trips: each command start pays for the host's login shell."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        root = shlex.quote(ctx.remote_root)
        self._enter = f"mkdir -p -- {root} && cd -- {root} && "
        self._new_dirs: dict[str, int] = {}
        self._resume_parts: dict[str, str] = {}

    def _where(self, rel: str = "") -> str:
        return f"{self.ctx.host}:{self.ctx.remote_path(rel) if rel else self.ctx.remote_root}"

    async def execute(self, plan: SyncPlan, *, root_exists: bool = True) -> None:
        self._new_dirs = {rel: open_mode(mode) for rel, mode in plan.mkdirs}
        self._resume_parts = plan.resume_parts
        batches, big = split_files(self.ctx, plan.files, plan.links, plan.resume)
        links: list[tuple[str, Entry]] = []
        if "tar" not in self.ctx.tools:  # no tar on the host: every file streams on its own
            links = [(r, e) for r, e in plan.links]
        claimed: set[str] = set()
        for batch in batches:
            claimed |= ancestors_in([rel for rel, _ in batch], self._new_dirs)
        for rel, _ in big:
            claimed |= ancestors_in([rel], self._new_dirs)
        lonely = [rel for rel in self._new_dirs if rel not in claimed]
        await self._prepare(plan, lonely, root_exists=root_exists)
        await self._transfer(batches, big, plan.resume)
        if links:
            await self._make_links(links)
        locked = [(r, m) for r, m in plan.mkdirs + plan.chmods if not writable(m)]
        if locked:
            await self._run(self._enter + _chmods(locked), "setting folder modes")

    async def resend(self, files: list[tuple[str, Entry]]) -> None:
        """Send these again whatever the quick check says (after a --verify mismatch)."""
        batches, big = split_files(self.ctx, files, [], {})
        await self._transfer(batches, big, {})

    async def _make_links(self, links: list[tuple[str, Entry]]) -> None:
        """Symlinks without tar: made under a temp name, then renamed over the final one."""
        lines = []
        for rel, entry in links:
            temp = part_name(rel, entry)
            lines.append(
                f"rm -f -- {dot(temp)} && ln -s -- {shlex.quote(entry.target)} {dot(temp)} && "
                f"mv -f -- {dot(temp)} {dot(rel)}"
            )
        await self._run("set -e\n" + self._enter + "true\n" + "\n".join(lines), "making links")
        self.ctx.totals.files_sent += len(links)

    async def _run(self, script: str, doing: str, rel: str = "") -> None:
        status, _, stderr = await self.ctx.shell.run(script, doing=doing)
        if status != 0:
            raise failure_from_stderr(stderr, self._where(rel), doing)

    async def _prepare(self, plan: SyncPlan, lonely: list[str], *, root_exists: bool) -> None:
        """Removals, mode fixes and folders no transfer creates: one script, when needed."""
        lines = scripts_for("", "rm -rf --", plan.cleanup + plan.stages + plan.delete)
        lines += scripts_for("", "rmdir --", plan.rmdirs)
        lines += [_make_dirs(lonely, self._new_dirs)] if lonely else []
        chmods = [(r, m) for r, m in plan.chmods if writable(m)]
        if chmods:
            lines.append(_chmods(chmods))
        if not lines and root_exists:
            return
        await self._run("set -e\n" + self._enter + "true\n" + "\n".join(lines),
                        "preparing the destination")
        self.ctx.totals.deleted += plan.extraneous

    async def _transfer(
        self,
        batches: list[list[tuple[str, Entry]]],
        big: list[tuple[str, Entry]],
        resume: dict[str, int],
    ) -> None:
        await run_together(
            [
                each_concurrently(batches, self.ctx.batch_streams, self._send_batch),
                each_concurrently(
                    big,
                    self.ctx.file_streams,
                    lambda item: self._send_file(item[0], item[1], resume.get(item[0], 0)),
                ),
            ]
        )

    # -- small files -------------------------------------------------------------------------
    async def _send_batch(self, items: list[tuple[str, Entry]]) -> None:
        for attempt in range(CHANGED_RETRIES + 1):
            outcome = await self._one_batch(items)
            for rel, reason in outcome.problems:
                self.ctx.problem(rel, reason)
            if not outcome.changed:
                return
            self.ctx.totals.changed += [rel for rel, _ in outcome.changed]
            items = outcome.changed
            if attempt == CHANGED_RETRIES:
                for rel, _ in items:
                    self.ctx.problem(rel, "kept changing while being sent; not stored")

    async def _one_batch(self, items: list[tuple[str, Entry]]) -> BatchOutcome:
        ctx = self.ctx
        stage_dir = stage_name(secrets.token_hex(6))
        stage = shlex.quote(stage_dir)
        dirs = ancestors_in([rel for rel, _ in items], self._new_dirs)
        # A folder new to the destination moves in whole (one rename, complete when it
        # appears); everything else is hard-linked in, file by file. Should the folder have
        # appeared meanwhile (another batch), the rename fails and the links do the work.
        # One ``mv -n -t PARENT`` per parent folder (a process per folder costs a fork and
        # an exec on the host): ``-n`` leaves a folder that exists by now to the links.
        tops: dict[str, list[str]] = {}
        for folder in sorted(d for d in dirs if d.rpartition("/")[0] not in self._new_dirs):
            tops.setdefault(folder.rpartition("/")[0], []).append(folder)
        moves = "".join(
            f"mv -n -t {dot(parent) if parent else './'} -- "
            + " ".join(shlex.quote(f"{stage_dir}/{d}") for d in folders)
            + " 2>/dev/null\n"
            for parent, folders in tops.items()
        )
        if len(moves) > SCRIPT_LIMIT // 2:
            moves = ""  # a command line has its limits; the links then do all the work
        script = (
            f"{self._enter}mkdir -- {stage} || exit 1\n"
            f"tar -x -p --no-same-owner -b 256 -B -f - -C {stage}; rc=$?\n"
            f"if [ $rc -eq 0 ]; then\n{moves}"
            f"cp -RPlf --no-preserve=all -- {stage}/. ./; rc=$?\nfi\n"
            f"rm -rf -- {stage}\n"
            + (f"[ $rc -eq 0 ] && {{ {_make_dirs(sorted(dirs), self._new_dirs)}; }} || rc=1\n"
               if dirs else "")
            + "exit $rc\n"
        )
        producer = TarProducer(ctx, items)
        size = sum(e.size for _, e in items)
        token = ctx.progress.start_file(f"{len(items)} files", size)
        process = await ctx.shell.start(script, doing="sending a batch of files")
        try:
            with _until_the_command_stops_reading():
                chunk_size = ctx.chunk_size()
                pending = asyncio.ensure_future(asyncio.to_thread(producer.next_chunk, chunk_size))
                while True:
                    produced = await pending
                    if produced is None:
                        break
                    data, files, content, name = produced
                    pending = asyncio.ensure_future(
                        asyncio.to_thread(producer.next_chunk, chunk_size)
                    )
                    await ctx.throttle(len(data))
                    await process.write(data)
                    if name:
                        ctx.progress.rename_file(token, name)
                    ctx.progress.files_done += files
                    ctx.progress.advance(token, content)
                await process.write_eof()
            status, stderr = await process.finish()
        except BaseException:
            await process.retire()
            raise
        finally:
            ctx.progress.drop_file(token)
        if status != 0:
            raise failure_from_stderr(stderr, self._where(), "unpacking files")
        outcome = producer.outcome
        ctx.totals.files_sent += len(outcome.sent)
        ctx.totals.bytes_sent += sum(e.size for _, e in outcome.sent)
        return outcome

    # -- big files ---------------------------------------------------------------------------
    async def _send_file(self, rel: str, entry: Entry, resume_size: int) -> None:
        ctx = self.ctx
        path = ctx.local_path(ctx.source_rel(rel))
        stale: list[str] = []  # parts of versions that changed under us
        for _attempt in range(CHANGED_RETRIES + 1):
            now = await asyncio.to_thread(entry_of_path, path)
            if now is None or now.kind != "f":
                ctx.problem(rel, "vanished before it could be sent")
                return
            if now != entry:
                entry, resume_size = now, 0
            part = self._resume_parts.get(rel, "") if resume_size else ""
            part = part or part_name(rel, entry)
            offset = await self._resume_offset(path, entry, part, resume_size)
            try:
                await self._stream(rel, path, entry, part, offset, stale)
            except _SourceChanged:
                ctx.totals.changed.append(rel)
                stale.append(part)
                resume_size = 0
                continue
            ctx.totals.files_sent += 1
            ctx.totals.bytes_sent += entry.size - offset
            ctx.totals.resumed_bytes += offset
            ctx.progress.finish_file(None)
            return
        ctx.problem(rel, "kept changing while being sent; not stored")

    async def _resume_offset(self, path: str, entry: Entry, part: str, size: int) -> int:
        """How much of an existing ``.part`` can stay: all of it if its prefix hashes equal."""
        if size <= 0 or size > entry.size:
            return 0
        ctx = self.ctx
        return size if await ctx.same_prefix(ctx.remote_path(part), path, size) else 0

    async def _stream(
        self, rel: str, path: str, entry: Entry, part: str, offset: int, stale: list[str]
    ) -> None:
        """Data into the ``.part``; the same command then checks its size, sets mode and mtime
        and renames it. The last chunk is held back until the source is re-checked: when it
        changed, the command sees a short file and stores nothing."""
        ctx = self.ctx
        dirs = ancestors_in([rel], self._new_dirs)
        # A fresh start removes the old ``.part`` rather than truncating it: a writer of an
        # interrupted run that is still draining its input on the host then writes into the
        # removed file, never into this one (a truncated file shared with it could get holes).
        remove = [p for p in stale if p != part] + ([part] if offset == 0 else [])
        script = (
            self._enter
            + (f"rm -f -- {' '.join(dot(p) for p in remove)}; " if remove else "")
            + (f"{_make_dirs(sorted(dirs), self._new_dirs)} && " if dirs else "")
            + f"cat {'>>' if offset else '>'} {dot(part)} && "
            + f'[ "$(wc -c < {dot(part)})" -eq {entry.size} ] && '
            + f"chmod {entry.mode:o} {dot(part)} && "
            + f"TZ=UTC0 touch -m -t {touch_stamp(entry.mtime)} {dot(part)} && "
            + f"mv -f -- {dot(part)} {dot(rel)}"
        )
        process = await ctx.shell.start(script, doing=f"sending {rel}")
        token = ctx.progress.start_file(rel, entry.size, done=offset)
        fd = -1
        try:
            fd = await asyncio.to_thread(os.open, path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            before = await asyncio.to_thread(os.fstat, fd)
            with _until_the_command_stops_reading():
                await self._pump(process, fd, offset, entry, before, token)
                await process.write_eof()
            status, stderr = await process.finish()
        except BaseException:
            await process.retire()
            raise
        finally:
            ctx.progress.drop_file(token)
            if fd >= 0:
                os.close(fd)
        if status != 0:
            if not stderr.strip():
                raise _SourceChanged(rel)  # the size check failed: the data was incomplete
            raise failure_from_stderr(stderr, self._where(rel), "writing")

    async def _pump(
        self,
        process: RemoteProcess,
        fd: int,
        offset: int,
        entry: Entry,
        before: os.stat_result,
        token: int,
    ) -> None:
        ctx = self.ctx
        size = entry.size
        chunk = ctx.chunk_size()
        position = offset

        def read(at: int) -> asyncio.Future[bytes]:
            return asyncio.ensure_future(asyncio.to_thread(os.pread, fd, min(chunk, size - at), at))

        reading: asyncio.Future[bytes] | None = read(position) if position < size else None
        try:
            while reading is not None:
                data = await reading
                reading = None
                if not data:
                    raise _SourceChanged("shrank while being sent")
                position += len(data)
                if position < size:
                    reading = read(position)
                else:
                    after = await asyncio.to_thread(os.fstat, fd)
                    if (
                        after.st_mtime_ns != before.st_mtime_ns
                        or after.st_size != size
                        or after.st_mtime_ns // 1_000_000_000 != entry.mtime
                    ):
                        raise _SourceChanged("changed while being sent")
                await ctx.throttle(len(data))
                await process.write(data)
                ctx.progress.advance(token, len(data))
        finally:
            if reading is not None:
                reading.cancel()
                with contextlib.suppress(BaseException):
                    await reading


@contextlib.contextmanager
def _until_the_command_stops_reading() -> Iterator[None]:
    """Feed a command until it stops reading: when it ends early (no permission, no space),
    its exit status and stderr, read next, say why, which a broken pipe does not."""
    with contextlib.suppress(BrokenPipeError):
        yield


def _make_dirs(rels: list[str], modes: dict[str, int]) -> str:
    words = " ".join(dot(rel) for rel in rels)
    return f"mkdir -p -- {words} && " + _chmods([(rel, modes[rel]) for rel in rels])


def _chmods(items: list[tuple[str, int]]) -> str:
    by_mode: dict[int, list[str]] = {}
    for rel, mode in items:
        by_mode.setdefault(mode, []).append(rel)
    return " && ".join(
        f"chmod {mode:o} -- {' '.join(dot(r) for r in rels)}"
        for mode, rels in sorted(by_mode.items())
    )


