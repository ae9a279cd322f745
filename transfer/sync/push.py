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
import errno
import os
import secrets
import shlex
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

from transfer.errors import GputuiError
from transfer.sync.context import (
    BATCH_BYTES,
    BATCH_FILES,
    BATCH_MIN_BYTES,
    BATCH_MIN_FILES,
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
from transfer.sync.tarstream import END, member, padding
from transfer.sync.tasks import each_concurrently, run_together
from transfer.sync.verify import choose_hash, hash_local, parse_single_hash, prefix_hash_command


class _SourceChanged(Exception):
    """The file changed while it was being read; it is sent again."""


@dataclass
class _BatchOutcome:
    sent: list[tuple[str, Entry]] = field(default_factory=list)
    changed: list[tuple[str, Entry]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


class _TarProducer:
    """Builds a batch's tar stream chunk by chunk, reading files in a worker thread."""

    def __init__(self, ctx: Context, items: list[tuple[str, Entry]]) -> None:
        self._ctx = ctx
        self._items = items
        self._next = 0
        self._ended = False
        self.outcome = _BatchOutcome()

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
            fd = os.open(path, _READ_FLAGS)
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


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


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
        self._new_dirs = {rel: _open_mode(mode) for rel, mode in plan.mkdirs}
        self._resume_parts = plan.resume_parts
        batches, big = _split(self.ctx, plan.files, plan.links, plan.resume)
        links: list[tuple[str, Entry]] = []
        if "tar" not in self.ctx.tools:  # no tar on the host: every file streams on its own
            links = [(r, e) for r, e in plan.links]
        claimed: set[str] = set()
        for batch in batches:
            claimed |= _ancestors_in([rel for rel, _ in batch], self._new_dirs)
        for rel, _ in big:
            claimed |= _ancestors_in([rel], self._new_dirs)
        lonely = [rel for rel in self._new_dirs if rel not in claimed]
        await self._prepare(plan, lonely, root_exists=root_exists)
        await self._transfer(batches, big, plan.resume)
        if links:
            await self._make_links(links)
        locked = [(r, m) for r, m in plan.mkdirs + plan.chmods if not _writable(m)]
        if locked:
            await self._run(self._enter + _chmods(locked), "setting folder modes")

    async def resend(self, files: list[tuple[str, Entry]]) -> None:
        """Send these again whatever the quick check says (after a --verify mismatch)."""
        batches, big = _split(self.ctx, files, [], {})
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
        chmods = [(r, m) for r, m in plan.chmods if _writable(m)]
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

    async def _one_batch(self, items: list[tuple[str, Entry]]) -> _BatchOutcome:
        ctx = self.ctx
        stage_dir = stage_name(secrets.token_hex(6))
        stage = shlex.quote(stage_dir)
        dirs = _ancestors_in([rel for rel, _ in items], self._new_dirs)
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
        producer = _TarProducer(ctx, items)
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
        name = choose_hash(ctx.tools)
        try:
            command = prefix_hash_command(ctx.remote_path(part), size, name, ctx.tools, ctx.host)
        except GputuiError:
            return 0
        remote, local = await asyncio.gather(
            ctx.shell.run(command, doing="checking a partial file"),
            asyncio.to_thread(hash_local, path, name, size),
        )
        status, output, _ = remote
        if status != 0 or parse_single_hash(output) != local:
            return 0
        return size

    async def _stream(
        self, rel: str, path: str, entry: Entry, part: str, offset: int, stale: list[str]
    ) -> None:
        """Data into the ``.part``; the same command then checks its size, sets mode and mtime
        and renames it. The last chunk is held back until the source is re-checked: when it
        changed, the command sees a short file and stores nothing."""
        ctx = self.ctx
        dirs = _ancestors_in([rel], self._new_dirs)
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


def _split(
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
    return _batches(small, ctx.batch_streams), big


def _open_mode(mode: int) -> int:
    return mode if _writable(mode) else mode | 0o300


def _writable(mode: int) -> bool:
    """A folder mode that still lets us put files in (owner write and search)."""
    return mode & 0o300 == 0o300


def _ancestors_in(rels: list[str], folders: dict[str, int]) -> set[str]:
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


def _batches(items: list[tuple[str, Entry]], streams: int) -> list[list[tuple[str, Entry]]]:
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
