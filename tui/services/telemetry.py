"""The app's telemetry: a stream worker per watched host, and a signal when a host's state moves.

Streams are async workers in a ``live:`` group (the headless runner does not wait for them) and
the app cancels them when it exits. Each event is folded into that host's
``transfer.telemetry.fleet.HostTelemetry`` and announced with ``changed`` (the host's name); views
redraw only what belongs to that host, so 20 hosts at 1 Hz cost 20 small redraws a second.

Which hosts are watched: the local host from the start (no network, no keys), a host whose test
just succeeded (it is reachable and its key trusted), and a host whose screen is opened. A host
that is deleted stops; one whose profile changed starts over with the new profile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from textual.app import App
from textual.signal import Signal
from textual.worker import Worker

from transfer.hosts import LOCAL, HostProfile
from transfer.link import Link
from transfer.link_pool import LinkPool
from transfer.telemetry import DEFAULT_INTERVAL_S, uptime
from transfer.telemetry.events import TelemetryEvent
from transfer.telemetry.fleet import HostTelemetry
from transfer.telemetry.uptime import UptimeLedger

if TYPE_CHECKING:
    from transfer.telemetry.stream import TelemetryStream

GROUP = "live:telemetry"


def open_stream(
    host: HostProfile, interval: float, clock: Callable[[], float], link: Link
) -> TelemetryStream:
    """The telemetry stream of ``host`` over its shared ``link`` (tests swap this out)."""
    # The stream (sources, readers, job listing) loads with the first watched host.
    from transfer.telemetry.stream import TelemetryStream

    return TelemetryStream(host, interval=interval, clock=clock, link=link)


class StatusLike(Protocol):
    @property
    def state(self) -> str: ...


class FleetTelemetry:
    """The telemetry of every watched host, owned by the app."""

    def __init__(
        self,
        app: App[Any],
        *,
        interval: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        persist: bool = True,
        links: LinkPool | None = None,
    ) -> None:
        self.app = app
        self.links = links or LinkPool()
        self.interval = interval
        self.clock = clock
        self.persist = persist
        self.ledger = UptimeLedger()
        self.hosts: dict[str, HostTelemetry] = {}
        self.changed: Signal[str] = Signal(app, "telemetry-changed")
        self._workers: dict[str, Worker[None]] = {}
        self._profiles: dict[str, HostProfile] = {}
        self._ledger_requested = False
        self._ledger_loaded = not persist
        self._saving = False

    # -- what the views read -----------------------------------------------------------------
    def state(self, name: str) -> HostTelemetry | None:
        return self.hosts.get(name)

    def is_watching(self, name: str) -> bool:
        return name in self._workers

    # -- which hosts stream ------------------------------------------------------------------
    def track(self, host: HostProfile) -> HostTelemetry:
        """The state of ``host``, created if new, without streaming it (``feed`` fills it)."""
        return self._state_for(host)

    def watch(self, host: HostProfile) -> HostTelemetry:
        """Stream ``host`` (again, when its profile changed); its state either way."""
        state = self._state_for(host)
        if self._profiles.get(host.name) != host:
            self.stop(host.name)
        if host.name not in self._workers:
            self._profiles[host.name] = host
            self._load_ledger()
            self._workers[host.name] = self.app.run_worker(
                self._follow(host),
                name=f"telemetry {host.name}",
                group=GROUP,
                exit_on_error=False,
                description=f"Telemetry of {host.name}",
            )
        return state

    def stop(self, name: str) -> None:
        worker = self._workers.pop(name, None)
        self._profiles.pop(name, None)
        if worker is not None:
            worker.cancel()

    def follow(self, hosts: Iterable[HostProfile], statuses: Mapping[str, StatusLike]) -> None:
        """Keep the streams in line with the host list: the local host, hosts that tested
        fine, and every host already watched (with its current profile); drop deleted ones."""
        by_name = {host.name: host for host in hosts}
        for name in list(self._workers):
            if name not in by_name:
                self.stop(name)
                self.hosts.pop(name, None)
        for name, host in by_name.items():
            status = statuses.get(name)
            if (
                name == LOCAL
                or name in self._workers
                or (status is not None and status.state == "ok")
            ):
                self.watch(host)

    def _state_for(self, host: HostProfile) -> HostTelemetry:
        state = self.hosts.get(host.name)
        if state is None:
            state = self.hosts[host.name] = HostTelemetry(host.name, ledger=self.ledger)
        state.rate_usd_per_hour = host.rate_usd_per_hour
        return state

    async def _follow(self, host: HostProfile) -> None:
        link = self.links.acquire(host)
        try:
            stream = open_stream(host, self.interval, self.clock, link)
            async for event in stream.events():
                self.feed(event)
        finally:
            await self.links.release(link)

    # -- events ------------------------------------------------------------------------------
    def feed(self, event: TelemetryEvent) -> None:
        """Fold one event into its host's state and announce it (the benchmark and tests feed
        synthetic events here too)."""
        state = self.hosts.get(event.host)
        if state is None:
            return
        state.apply(event)
        self.changed.publish(event.host)
        if self.ledger.dirty and self._ledger_loaded:
            self._save_ledger()

    # -- the uptime ledger -------------------------------------------------------------------
    def _load_ledger(self) -> None:
        if self._ledger_requested or not self.persist:
            return
        self._ledger_requested = True
        self.app.run_worker(
            self._read_ledger, thread=True, group="telemetry-ledger", exit_on_error=False
        )

    def _read_ledger(self) -> None:
        older = uptime.load()
        self.app.call_from_thread(self._merge_ledger, older)

    def _merge_ledger(self, older: UptimeLedger) -> None:
        """Nothing is written before the file was read, so no earlier period is lost."""
        self.ledger.merge(older)
        self._ledger_loaded = True
        if self.ledger.dirty:
            self._save_ledger()

    def _save_ledger(self) -> None:
        if self._saving:
            return
        self._saving = True
        text = self.ledger.to_json()
        self.ledger.dirty = False
        self.app.run_worker(
            lambda: self._write_ledger(text),
            thread=True,
            group="telemetry-ledger",
            exit_on_error=False,
        )

    def _write_ledger(self, text: str) -> None:
        try:
            uptime.write(text)
        except OSError as error:
            self.app.call_from_thread(
                self.app.notify, f"uptime.json not written: {error}", severity="warning"
            )
        finally:
            self.app.call_from_thread(self._saved)

    def _saved(self) -> None:
        self._saving = False
