"""Push and pull: scan both sides, plan with the quick check, move what differs, verify.

One attempt is scan → plan → delete/create folders → send → (verify). When the connection
drops, the attempt is abandoned and, after a backoff, started again from a fresh scan: files
already in place are skipped by the quick check and big files resume from their ``.part``.
After the retries, the error says that running the same command again resumes.
"""

from __future__ import annotations

import asyncio
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from transfer.backoff import Backoff
from transfer.errors import LinkLost
from transfer.link import Link
from transfer.sync.bwlimit import TokenBucket
from transfer.sync.context import (
    BATCH_STREAMS,
    FILE_STREAMS,
    SMALL_FILE_LIMIT,
    Context,
    Totals,
)
from transfer.sync.destination import pull_mode_mask
from transfer.sync.errors import TransferInterrupted
from transfer.sync.events import (
    Direction,
    FileProblem,
    Finished,
    Mismatch,
    PhaseChanged,
    PlanReady,
    PlanSummary,
    Retrying,
    SyncEvent,
    SyncResult,
)
from transfer.sync.excludes import ExcludeRules
from transfer.sync.layouts import LayoutFinder
from transfer.sync.manifest import Entry, Manifest
from transfer.sync.plan import SyncPlan, make_plan
from transfer.sync.progress import ProgressTracker
from transfer.sync.pull import PullExecutor
from transfer.sync.push import PushExecutor
from transfer.sync.remote import RECEIVE_WINDOW, RemoteProcess, RemoteShell
from transfer.sync.verify import (
    choose_hash,
    files_hash_command,
    hash_local,
    names_input,
    parse_files_hashes,
)

if TYPE_CHECKING:
    from transfer.hosts import HostProfile

RETRY_BACKOFF = Backoff(initial_s=1.0, factor=2.0, cap_s=8.0)
LOCAL_HASH_THREADS = 2


@dataclass(frozen=True)
class SyncRequest:
    """One push or pull, as the CLI or the app asks for it.

    ``local`` is a path on this machine; ``remote`` a path on the host (absolute, ``~/…``, or
    relative to the host's workdir). The contents of the source folder are mirrored into the
    destination folder; a single file goes into a destination folder (an existing one, or a
    path ending in ``/``) or onto the destination path itself.
    """

    direction: Direction
    local: str
    remote: str
    delete: bool = False
    dry_run: bool = False
    verify: bool = False
    excludes: tuple[str, ...] = ()
    bwlimit: int | None = None
    retries: int = 3
    small_file_limit: int = SMALL_FILE_LIMIT
    file_streams: int = FILE_STREAMS
    batch_streams: int = BATCH_STREAMS


# What the CLI asks for, as plain values: the same dict whether the push runs in the command's
# own process or in the connection keeper (transfer/keeper).
REQUEST_FIELDS = ("direction", "local", "remote", "delete", "dry_run", "verify", "excludes",
                  "bwlimit")


def request_from_fields(fields: dict[str, Any], host: HostProfile) -> SyncRequest:
    """A SyncRequest from the CLI's fields; a push with no REMOTE goes to the host's workdir."""
    unknown = set(fields) - set(REQUEST_FIELDS)
    if unknown:
        raise ValueError(f"unknown sync request fields: {sorted(unknown)}")
    values = dict(fields)
    if values.get("remote") is None:
        values["remote"] = host.workdir.rstrip("/") + "/"
    values["excludes"] = tuple(values.get("excludes") or ())
    return SyncRequest(**values)


class Sync:
    """Runs one request over a connected link, reporting events to ``on_event``."""

    def __init__(
        self,
        link: Link,
        request: SyncRequest,
        on_event: Callable[[SyncEvent], None] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        shells: list[RemoteProcess] | None = None,
        keep_shell: bool = False,
    ) -> None:
        """``shells`` are host shells an earlier sync kept waiting (see ``kept_shells``);
        with ``keep_shell`` this sync keeps one for the next, instead of ending them all."""
        self.link = link
        self.request = request
        self._on_event = on_event
        self._clock = clock
        self.totals = Totals()
        self.progress = ProgressTracker(self._emit, clock=clock)
        self._bucket = TokenBucket(request.bwlimit) if request.bwlimit else None
        self.shell = RemoteShell(link)
        if request.bwlimit:
            self.shell.receive_window = min(max(request.bwlimit // 8, 64 * 1024), RECEIVE_WINDOW)
            for shell in shells or []:  # their channels have the default window: too much here
                shell.abort()
        else:
            self.shell.adopt(shells or [])
        self._keep_shell = keep_shell
        self.kept_shells: list[RemoteProcess] = []
        self._verified = 0
        self._mismatches: list[Mismatch] = []
        self._repaired: list[str] = []
        self._hash_name: str | None = None
        self._skipped: tuple[int, int] = (0, 0)
        self._plan_summary: PlanSummary | None = None

    def _emit(self, event: SyncEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _phase(self, phase: str) -> None:
        self.progress.phase = phase  # type: ignore[assignment]
        self._emit(PhaseChanged(phase))  # type: ignore[arg-type]

    @property
    def host(self) -> str:
        return self.link.host.name

    async def run(self) -> SyncResult:
        started = self._clock()
        try:
            source, destination = await self._attempts()
        finally:
            self.kept_shells = self.shell.close_ready(keep=1 if self._keep_shell else 0)
        result = SyncResult(
            direction=self.request.direction,
            host=self.host,
            source=source,
            destination=destination,
            dry_run=self.request.dry_run,
            files_sent=self.totals.files_sent,
            bytes_sent=self.totals.bytes_sent,
            files_skipped=self._skipped[0],
            bytes_skipped=self._skipped[1],
            resumed_bytes=self.totals.resumed_bytes,
            deleted=self.totals.deleted,
            verified=self._verified,
            hash_name=self._hash_name,
            mismatches=list(self._mismatches),
            repaired=list(self._repaired),
            problems=list(self.totals.problems),
            resent_changed=list(dict.fromkeys(self.totals.changed)),
            elapsed_s=self._clock() - started,
            plan=self._plan_summary,
        )
        self._phase("done")
        self._emit(Finished(result))
        return result

    async def _attempts(self) -> tuple[str, str]:
        """Attempts until one completes; a dropped connection is retried with backoff."""
        attempt = 0
        while True:
            try:
                return await self._attempt()
            except LinkLost as exc:
                self.shell.close_ready()
                attempt += 1
                if attempt > self.request.retries:
                    tried = f" (retried {self.request.retries}x)" if self.request.retries else ""
                    raise TransferInterrupted(
                        f"{exc}{tried}; run the same command again to resume"
                    ) from None
                delay = RETRY_BACKOFF.delay(attempt)
                self._emit(Retrying(attempt, self.request.retries, delay, str(exc)))
                await asyncio.sleep(delay)

    # -- one attempt -------------------------------------------------------------------------
    async def _attempt(self) -> tuple[str, str]:
        request = self.request
        self._phase("scanning")
        rules = ExcludeRules.from_patterns(request.excludes)
        finder = LayoutFinder(
            self.link, self.shell, local=request.local, remote=request.remote,
            small_file_limit=request.small_file_limit, batch_streams=request.batch_streams,
        )
        if request.direction == "push":
            layout = await finder.push_layout(rules)
        else:
            layout = await finder.pull_layout(rules)
        source_label = layout.local_root if request.direction == "push" else layout.remote_root
        dest_label = layout.remote_root if request.direction == "push" else layout.local_root
        if layout.single:
            name = next(iter(layout.source.entries), "")
            src_name = layout.source_names.get(name, name)
            source_label = posixpath.join(source_label, src_name)
            dest_label = posixpath.join(dest_label, name)
        source_label = _labelled(request.direction == "pull", self.host, source_label)
        dest_label = _labelled(request.direction == "push", self.host, dest_label)

        self._phase("planning")
        protected = _protected(layout.destination) if not layout.single else frozenset()
        mode_mask = pull_mode_mask() if request.direction == "pull" else 0o7777
        plan = make_plan(
            layout.source, layout.destination, delete=request.delete and not layout.single,
            protected=protected, mode_mask=mode_mask,
        )
        summary = plan.summary()
        self._plan_summary = summary
        self._skipped = (summary.files_to_skip, summary.bytes_to_skip)
        self._emit(PlanReady(summary))
        for rel, reason in plan.conflicts:
            conflict = FileProblem(rel, reason)
            if conflict not in self.totals.problems:  # a retried attempt finds it again
                self.totals.problems.append(conflict)
                if not request.dry_run:  # a dry run lists them in its plan
                    self._emit(conflict)
        if request.dry_run:
            return source_label, dest_label

        ctx = Context(
            link=self.link,
            shell=self.shell,
            local_root=layout.local_root,
            remote_root=layout.remote_root,
            tools=layout.source.tools | layout.destination.tools,
            progress=self.progress,
            totals=self.totals,
            emit=self._emit,
            bucket=self._bucket,
            source_names=layout.source_names,
            small_file_limit=request.small_file_limit,
            file_streams=request.file_streams,
            batch_streams=request.batch_streams,
            mode_mask=mode_mask,
        )
        executor: PushExecutor | PullExecutor = (
            PushExecutor(ctx) if request.direction == "push" else PullExecutor(ctx)
        )
        self._phase("sending")
        resumable = sum(plan.resume.values())
        self.progress.begin(
            self.totals.files_sent + len(plan.files) + len(plan.links),
            self.totals.bytes_sent + plan.bytes_to_send - resumable,
            keep=True,
        )
        await executor.execute(plan, root_exists=layout.destination.root_kind == "d")
        if request.verify:
            await self._verify(ctx, executor, plan)
        return source_label, dest_label

    # -- verify ------------------------------------------------------------------------------
    async def _verify(
        self, ctx: Context, executor: PushExecutor | PullExecutor, plan: SyncPlan
    ) -> None:
        self._phase("verifying")
        files = [(rel, e) for rel, e in plan.files + plan.skipped if e.kind == "f"]
        problems = {p.path for p in self.totals.problems}
        files = [(rel, e) for rel, e in files if rel not in problems]
        name = choose_hash(ctx.tools)
        self._hash_name = name
        mismatched = await self._compare(ctx, files, name)
        first_round = set(mismatched)
        if mismatched:
            # Send them again (whatever the quick check says), then look once more.
            again = [(rel, e) for rel, e in files if rel in mismatched]
            self._phase("sending")
            await executor.resend(again)
            self._phase("verifying")
            mismatched = await self._compare(ctx, again, name)
        self._verified = len(files) - len(mismatched)
        self._mismatches = [mismatched[rel] for rel in sorted(mismatched)]
        self._repaired = sorted(first_round - set(mismatched))

    async def _compare(
        self, ctx: Context, files: list[tuple[str, Entry]], name: str
    ) -> dict[str, Mismatch]:
        if not files:
            return {}
        rels = [rel for rel, _ in files]
        pushing = self.request.direction == "push"
        remote_names = rels
        local_paths = [ctx.local_path(ctx.source_rel(rel) if pushing else rel) for rel in rels]
        if not pushing:
            remote_names = [ctx.source_rel(rel) for rel in rels]
        command = files_hash_command(ctx.remote_root, name, ctx.tools, ctx.host)  # type: ignore[arg-type]
        by_name = "python3 -c" not in command
        limiter = asyncio.Semaphore(LOCAL_HASH_THREADS)

        async def local_hash(path: str) -> str:
            async with limiter:
                try:
                    return await asyncio.to_thread(hash_local, path, name)  # type: ignore[arg-type]
                except OSError:
                    return "-"

        remote_run = self.shell.run(command, doing="hashing files", input=names_input(remote_names))
        remote, local = await asyncio.gather(
            remote_run, asyncio.gather(*(local_hash(p) for p in local_paths))
        )
        output = remote[1]
        remote_hashes = parse_files_hashes(output, remote_names, by_name)
        result: dict[str, Mismatch] = {}
        for rel, remote_name, local_digest in zip(rels, remote_names, local, strict=True):
            remote_digest = remote_hashes.get(remote_name, "-")
            if remote_digest != local_digest or local_digest == "-":
                source, dest = (
                    (local_digest, remote_digest) if pushing else (remote_digest, local_digest)
                )
                result[rel] = Mismatch(rel, source, dest)
        return result


def _labelled(on_host: bool, host: str, path: str) -> str:
    return f"{host}:{path}" if on_host else path


def _protected(destination: Manifest) -> frozenset[str]:
    """Destination folders that hold excluded entries: --delete keeps them."""
    folders: set[str] = set()
    for rel in destination.excluded:
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            folders.add("/".join(parts[:depth]))
    return frozenset(folders)


