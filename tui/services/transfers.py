"""Every push and pull the app started, owned by the app (``app.transfers``) so they outlive the
screen that began them; the Transfers pane of a host screen only draws them.

Each transfer runs as an app worker, over the host's shared link (``transfer.link_pool``). Its
progress events update the transfer's record, and ``changed`` (the host's name) is published at
most ten times a second whatever the event rate, so a 10,000-file push costs the screen ten small
redraws a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from textual.app import App
from textual.signal import Signal
from textual.worker import Worker

from transfer.errors import GputuiError
from transfer.hosts import HostProfile
from transfer.link_pool import LinkPool
from transfer.sync.events import (
    Finished,
    PhaseChanged,
    PlanReady,
    Progress,
    Retrying,
    SyncEvent,
    SyncResult,
)
from tui.throttle import Throttle

if TYPE_CHECKING:
    from transfer.sync.engine import SyncRequest

REDRAW_S = 0.1
TransferState = Literal["running", "done", "failed", "cancelled"]


@dataclass
class TransferRecord:
    """One push or pull, as the pane shows it."""

    id: int
    host: HostProfile
    request: SyncRequest
    started: float
    state: TransferState = "running"
    phase: str = "connecting"
    progress: Progress | None = None
    result: SyncResult | None = None
    error: str | None = None
    note: str | None = None  # the last retry, while the link is being restored
    ended: float | None = None
    worker: Worker[None] | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.state == "running"


class TransferManager:
    """Starts, cancels and resumes transfers; announces changes, throttled."""

    def __init__(
        self,
        app: App[Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = REDRAW_S,
        links: LinkPool | None = None,
    ) -> None:
        self.app = app
        self.links = links or LinkPool()
        self.clock = clock
        self.interval = interval
        self.records: list[TransferRecord] = []
        self.changed: Signal[str] = Signal(app, "transfers-changed")
        self._next_id = 0
        self._dirty: set[str] = set()
        self._throttle = Throttle(app.set_timer, interval, self._publish, clock=clock)

    # -- what the pane reads -----------------------------------------------------------------
    def for_host(self, name: str) -> list[TransferRecord]:
        """The host's transfers, newest first."""
        return [r for r in reversed(self.records) if r.host.name == name]

    # -- actions -----------------------------------------------------------------------------
    def start(self, host: HostProfile, request: SyncRequest) -> TransferRecord:
        self._next_id += 1
        record = TransferRecord(self._next_id, host, request, started=self.clock())
        self.records.append(record)
        self._run(record)
        return record

    def cancel(self, record: TransferRecord) -> bool:
        """Stop a running transfer; what was written stays as ``.part`` for a resume."""
        if not record.active or record.worker is None:
            return False
        record.worker.cancel()
        self._end(record, "cancelled")
        return True

    def resume(self, record: TransferRecord) -> bool:
        """Run a stopped or failed transfer again: done files are skipped, big ones resume."""
        if record.active:
            return False
        record.state, record.phase, record.error, record.note = "running", "connecting", None, None
        record.result, record.progress, record.ended = None, None, None
        record.started = self.clock()
        self._run(record)
        self._touch(record, force=True)
        return True

    # -- running -----------------------------------------------------------------------------
    def _run(self, record: TransferRecord) -> None:
        record.worker = self.app.run_worker(
            self._transfer(record),
            name=f"{record.request.direction} {record.host.name}",
            group=f"transfer:{record.id}",
            exit_on_error=False,
            description=f"{record.request.direction} {record.request.local}",
        )

    async def _transfer(self, record: TransferRecord) -> None:
        link = self.links.acquire(record.host)
        try:
            await link.connect()
            from transfer.sync.engine import Sync  # the engine loads with the first transfer

            sync = Sync(link, record.request, lambda event: self.on_event(record, event))
            result = await sync.run()
        except GputuiError as exc:
            record.error = str(exc)
            self._end(record, "failed")
        except Exception as exc:  # a bug: shown, and the app keeps running
            record.error = f"{type(exc).__name__}: {exc}"
            self._end(record, "failed")
        else:
            record.result = result
            if not result.ok:
                bad = len(result.mismatches) + len(result.problems)
                record.error = f"{bad} file{'s' if bad != 1 else ''} not copied right"
            self._end(record, "done" if result.ok else "failed")
        finally:
            await self.links.release(link)
        if record.state == "failed":
            self.app.notify(
                record.error or "failed",
                title=f"{record.request.direction} {record.host.name} failed",
                severity="error",
            )

    def _end(self, record: TransferRecord, state: TransferState) -> None:
        if record.state != "running":
            return
        record.state = state
        record.ended = self.clock()
        self._touch(record, force=True)

    def on_event(self, record: TransferRecord, event: SyncEvent) -> None:
        """Fold one event of the transfer into its record (the sync calls this)."""
        if record.state != "running":
            return
        if isinstance(event, Progress):
            record.progress = event
            record.phase = event.phase
            record.note = None
        elif isinstance(event, PhaseChanged):
            record.phase = event.phase
        elif isinstance(event, Retrying):
            record.note = (
                f"connection lost; retry {event.attempt}/{event.of} in {event.delay_s:g} s"
            )
        elif isinstance(event, PlanReady) and record.progress is None:
            plan = event.plan
            record.progress = Progress(
                "sending", 0, plan.files_to_send, 0, plan.bytes_to_send, 0.0, None
            )
        elif isinstance(event, Finished):
            record.progress = (
                replace(record.progress, bytes_done=record.progress.bytes_total)
                if record.progress is not None and event.result.ok
                else record.progress
            )
        self._touch(record, force=isinstance(event, Finished))

    # -- throttled announcements (``tui.throttle``) -------------------------------------------
    def _touch(self, record: TransferRecord, *, force: bool = False) -> None:
        self._dirty.add(record.host.name)
        self._throttle.request(now=force)

    def _publish(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for name in sorted(dirty):
            self.changed.publish(name)
