"""Push and pull: scan both sides, plan with the quick check, move what differs, verify.

One attempt is scan → plan → delete/create folders → send → (verify). When the connection
drops, the attempt is abandoned and, after a backoff, started again from a fresh scan: files
already in place are skipped by the quick check and big files resume from their ``.part``.
After the retries, the error says that running the same command again resumes.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from transfer.errors import LinkLost
from transfer.link import Link
from transfer.sync.bwlimit import TokenBucket
from transfer.sync.context import (
    BATCH_MIN_FILES,
    BATCH_STREAMS,
    FILE_STREAMS,
    SMALL_FILE_LIMIT,
    Context,
    Totals,
)
from transfer.sync.destination import pull_mode_mask
from transfer.sync.errors import SyncUsageError, TransferInterrupted, failure_from_stderr
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
from transfer.sync.excludes import IGNORE_FILES, ExcludeRules
from transfer.sync.manifest import MAX_NAME_IN_PART, PART_SUFFIX, Entry, Manifest
from transfer.sync.plan import SyncPlan, make_plan
from transfer.sync.progress import ProgressTracker
from transfer.sync.pull import PullExecutor
from transfer.sync.push import PushExecutor
from transfer.sync.remote import RECEIVE_WINDOW, RemoteProcess, RemoteShell
from transfer.sync.scan import (
    ScanTarget,
    filter_manifest,
    fnmatch_escape,
    local_root_kind,
    parse_remote_scan,
    remote_scan_command,
    scan_local,
)
from transfer.sync.verify import (
    choose_hash,
    files_hash_command,
    hash_local,
    names_input,
    parse_files_hashes,
)

if TYPE_CHECKING:
    from transfer.hosts import HostProfile

RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0)
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


@dataclass
class _Layout:
    """Where both roots are, and (for one file) the name on each side."""

    local_root: str
    remote_root: str
    source: Manifest
    destination: Manifest
    source_names: dict[str, str]
    single: bool


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
                delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S)) - 1]
                self._emit(Retrying(attempt, self.request.retries, delay, str(exc)))
                await asyncio.sleep(delay)

    # -- one attempt -------------------------------------------------------------------------
    async def _attempt(self) -> tuple[str, str]:
        request = self.request
        self._phase("scanning")
        rules = ExcludeRules.from_patterns(request.excludes)
        if request.direction == "push":
            layout = await self._push_layout(rules)
        else:
            layout = await self._pull_layout(rules)
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

    # -- layouts -----------------------------------------------------------------------------
    async def _remote_scan(self, target: ScanTarget) -> Manifest:
        status, output, stderr = await self.shell.run_and_keep(
            remote_scan_command(target), doing="listing files"
        )
        if status != 0:
            raise failure_from_stderr(stderr, f"{self.host}:{target.root}", "listing files")
        return parse_remote_scan(output, self.host)

    async def _push_layout(self, rules: ExcludeRules) -> _Layout:
        request = self.request
        local = os.path.abspath(os.path.expanduser(request.local))
        kind = await asyncio.to_thread(local_root_kind, local)
        workdir = self.link.host.workdir
        if kind == "d":
            listing = asyncio.ensure_future(
                self._remote_scan(ScanTarget(request.remote, base=workdir))
            )
            try:
                source = await asyncio.to_thread(scan_local, ScanTarget(local), rules)
                self.shell.prestart(self._batch_shells(source))
                destination = await listing
            finally:
                if not listing.done():
                    listing.cancel()
                    await asyncio.gather(listing, return_exceptions=True)
            if destination.root_kind not in ("d", "missing"):
                raise SyncUsageError(
                    f"{self.host}:{destination.root} is not a folder; cannot push a folder there"
                )
            _filter(destination, rules)
            return _Layout(local, destination.root, source, destination, {}, single=False)
        if kind not in ("f", "l"):
            raise SyncUsageError(f"nothing to push at {local}")
        folder, name = os.path.split(local)
        source = await asyncio.to_thread(scan_local, ScanTarget(folder, (fnmatch_escape(name),)))
        into_folder = request.remote.endswith("/") or request.remote in ("", ".")
        destination = await self._remote_scan(
            ScanTarget(request.remote, _names_for(name), base=workdir)
        )
        if destination.root_kind == "d" or (into_folder and destination.root_kind == "missing"):
            return _Layout(folder, destination.root, source, destination, {}, single=True)
        target_dir, target_name = posixpath.split(destination.root)
        destination = await self._remote_scan(ScanTarget(target_dir, _names_for(target_name)))
        if destination.root_kind not in ("d", "missing"):
            raise SyncUsageError(f"{self.host}:{target_dir} is not a folder")
        source.entries = dict(zip([target_name], source.entries.values(), strict=False))
        return _Layout(
            folder, destination.root, source, destination, {target_name: name}, single=True
        )

    def _batch_shells(self, source: Manifest) -> int:
        """Shells to start while the host lists its side: enough for the batches that many
        small files will make (the listing's own shell takes the first). When nothing turns
        out to need sending, they end unused."""
        limit = self.request.small_file_limit
        small = sum(1 for e in source.entries.values() if e.kind != "d" and e.size <= limit)
        return max(min(self.request.batch_streams, small // BATCH_MIN_FILES) - 1, 0)

    async def _pull_layout(self, rules: ExcludeRules) -> _Layout:
        request = self.request
        local = os.path.abspath(os.path.expanduser(request.local))
        workdir = self.link.host.workdir
        source = await self._remote_scan(ScanTarget(request.remote, base=workdir))
        if source.root_kind == "missing":
            raise SyncUsageError(f"nothing to pull at {self.host}:{source.root}")
        if source.root_kind == "d":
            await self._load_remote_ignores(source, rules)
            _filter(source, rules)
            destination = await asyncio.to_thread(scan_local, ScanTarget(local))
            if destination.root_kind not in ("d", "missing"):
                raise SyncUsageError(f"{local} is not a folder; cannot pull a folder there")
            _filter(destination, rules)
            return _Layout(local, source.root, source, destination, {}, single=False)
        if source.root_kind == "other":
            raise SyncUsageError(f"{self.host}:{source.root} is not a file or folder")
        folder, name = posixpath.split(source.root)
        tools = source.tools
        source = await self._remote_scan(ScanTarget(folder, (fnmatch_escape(name),)))
        source.tools = tools
        source.entries = {rel: e for rel, e in source.entries.items() if rel == name}
        into_folder = request.local.endswith("/") or os.path.isdir(local)
        if into_folder:
            local_dir, local_name = local, name
        else:
            local_dir, local_name = os.path.split(local)
        destination = await asyncio.to_thread(
            scan_local, ScanTarget(local_dir, _names_for(local_name))
        )
        names = {}
        if local_name != name:
            source.entries = dict(zip([local_name], source.entries.values(), strict=False))
            names = {local_name: name}
        return _Layout(local_dir, folder, source, destination, names, single=True)

    async def _load_remote_ignores(self, source: Manifest, rules: ExcludeRules) -> None:
        """Read the host tree's ignore files (one command) so a pull honours them too."""
        found = sorted(
            rel
            for rel, entry in source.entries.items()
            if entry.kind == "f" and rel.rpartition("/")[2] in IGNORE_FILES
        )
        if not found:
            return
        script = (
            f"cd -- {shlex.quote(source.root)} && "
            "for f in \"$@\"; do wc -c < \"$f\"; cat -- \"$f\"; done"
        )
        # Each file: its size on a line, then its bytes.
        command = f"set -- {' '.join(shlex.quote('./' + rel) for rel in found)}; {script}"
        status, output, _ = await self.shell.run(command, doing="reading ignore files")
        if status != 0:
            return
        at = 0
        for rel in found:
            newline = output.find(b"\n", at)
            if newline < 0:
                break
            try:
                size = int(output[at:newline].strip() or 0)
            except ValueError:
                break  # not what wc printed: the rest is not read
            text = output[newline + 1 : newline + 1 + size]
            at = newline + 1 + size
            folder = rel.rpartition("/")[0]
            rules.add_file(folder, text.decode("utf-8", "surrogateescape"))

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


def _names_for(name: str) -> tuple[str, ...]:
    """The patterns that list one name and the ``.part`` files of its versions."""
    raw = os.fsencode(name)
    short = os.fsdecode(raw[:MAX_NAME_IN_PART]) if len(raw) > MAX_NAME_IN_PART else name
    return (fnmatch_escape(name), f".{fnmatch_escape(short)}.*{PART_SUFFIX}")


def _filter(manifest: Manifest, rules: ExcludeRules) -> None:
    manifest.excluded = filter_manifest(manifest, rules)


def _protected(destination: Manifest) -> frozenset[str]:
    """Destination folders that hold excluded entries: --delete keeps them."""
    folders: set[str] = set()
    for rel in destination.excluded:
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            folders.add("/".join(parts[:depth]))
    return frozenset(folders)


