"""The app as its screens and widgets see it: the host profiles, their tests, and the services.

``app.jobs`` (job lists and actions), ``app.transfers`` (pushes and pulls) and ``app.telemetry``
(samples) each own their concern and share one link per host (``app.links``). Every file read or
write runs in a thread worker and every connection in an async worker, so the screen keeps
drawing while a host takes its time. A widget or screen reads all of it through
:func:`services_of`, typed, whatever app it is mounted in (the gputui app, or a test app built on
:class:`ServicesApp`). What needs a dialog (trusting a host key) is the app's to override.
"""

from __future__ import annotations

from functools import partial

from textual import work
from textual.app import App
from textual.dom import DOMNode
from textual.signal import Signal

from transfer.errors import ConfigError, GputuiError
from transfer.hosts import HostProfile, HostStore, local_host
from transfer.link_pool import LinkPool
from tui import host_checks
from tui.host_status import HostStatus
from tui.services.jobs import JobsService
from tui.services.telemetry import FleetTelemetry
from tui.services.transfers import TransferManager


class ServicesApp(App[None]):
    """An app that owns the host profiles and the services built on them."""

    def __init__(self, store: HostStore | None = None) -> None:
        super().__init__()
        self.store = store or HostStore()
        self.hosts: list[HostProfile] = [local_host()]
        self.statuses: dict[str, HostStatus] = {}
        self.config_error: str | None = None
        self.hosts_loaded = False
        self.hosts_changed: Signal[None] = Signal(self, "hosts-changed")
        self.links = LinkPool()
        self.jobs = JobsService(self, self.links)
        self.transfers = TransferManager(self, links=self.links)
        self.telemetry = FleetTelemetry(self, links=self.links)

    # -- host profiles -----------------------------------------------------------------------
    def host_named(self, name: str) -> HostProfile | None:
        return next((host for host in self.hosts if host.name == name), None)

    @work(thread=True, exclusive=True, group="hosts-file", description="Reading hosts.yaml")
    def load_hosts(self) -> None:
        hosts, error = _read_hosts(self.store)
        self.call_from_thread(self._show_loaded, hosts, error)

    def _show_loaded(self, hosts: list[HostProfile], error: str | None) -> None:
        first_load = not self.hosts_loaded
        self.hosts, self.config_error, self.hosts_loaded = hosts, error, True
        self.hosts_changed.publish(None)
        if error:
            self.notify(error, title="hosts.yaml not read", severity="error", timeout=15)
        if first_load:
            self.hosts_first_loaded()

    def hosts_first_loaded(self) -> None:
        """The host profiles were read for the first time (the app opens its start host)."""

    def can_write_hosts(self) -> bool:
        """False, with the reason on screen, while hosts.yaml is malformed: never overwrite it."""
        if self.config_error:
            self.notify(
                f"Fix hosts.yaml first: nothing is written to it while it is malformed. "
                f"{self.config_error}",
                title="hosts.yaml not written",
                severity="error",
            )
            return False
        return True

    def save_host(self, host: HostProfile, replaces: str | None = None) -> None:
        """Add ``host`` or, when ``replaces`` names a profile, put it in that profile's place."""
        if self.can_write_hosts():
            self._write_hosts(partial(_replace_host, host, replaces), f"Saved {host.name}")

    def delete_host(self, name: str) -> None:
        if self.can_write_hosts():
            self._write_hosts(partial(_drop_host, name), f"Deleted {name}")

    @work(thread=True, group="hosts-file", description="Writing hosts.yaml")
    def _write_hosts(self, change: partial[list[HostProfile]], done: str) -> None:
        try:
            self.store.update(change)
        except (GputuiError, OSError) as exc:
            self.call_from_thread(self.notify, str(exc), title="Not saved", severity="error")
        else:
            self.call_from_thread(self.notify, done)
        hosts, error = _read_hosts(self.store)
        self.call_from_thread(self._show_loaded, hosts, error)

    # -- host tests ------------------------------------------------------------------------
    def set_status(self, name: str, status: HostStatus) -> None:
        self.statuses[name] = status
        self.hosts_changed.publish(None)

    def test_host(self, name: str) -> None:
        host = self.host_named(name)
        if host is None:
            return
        previous = self.statuses.get(name, HostStatus())
        self.set_status(name, HostStatus(state="testing", gpus=previous.gpus))
        self.run_worker(
            self._test_host(host),
            name=f"test {name}",
            group=f"test:{name}",
            exclusive=True,
            exit_on_error=False,
            description=f"Testing {name}",
        )

    async def _test_host(self, host: HostProfile) -> None:
        try:
            report = await host_checks.probe_host(host)
        except Exception as exc:
            status = host_checks.status_from_error(exc)
            self.set_status(host.name, status)
            if status.state in ("key-unknown", "key-changed"):
                await self.offer_trust(host, changed=status.state == "key-changed")
            else:
                self.notify(status.message, title=f"{host.name} not reachable", severity="error")
            return
        status = HostStatus.from_report(report)
        self.set_status(host.name, status)
        self.notify(f"{host.name}: {status.message}", title="Host test")

    async def offer_trust(self, host: HostProfile, *, changed: bool) -> None:
        """The host showed a key not trusted yet: the app asks whether to trust it."""


def services_of(node: DOMNode) -> ServicesApp:
    """The app of ``node``, with its host profiles and services."""
    app = node.app
    if not isinstance(app, ServicesApp):
        raise TypeError(f"{type(app).__name__} has no gputui services (build it on ServicesApp)")
    return app


def _read_hosts(store: HostStore) -> tuple[list[HostProfile], str | None]:
    """The profiles, or the built-in host alone and the one-line reason the file was not read."""
    try:
        return store.load(), None
    except ConfigError as exc:
        return [local_host()], str(exc)
    except OSError as exc:
        return [local_host()], f"{store.path}: {exc.strerror or exc}"


def _replace_host(
    host: HostProfile, replaces: str | None, hosts: list[HostProfile]
) -> list[HostProfile]:
    gone = {host.name, replaces}
    kept = [h for h in hosts if h.name not in gone]
    position = next((i for i, h in enumerate(hosts) if h.name in gone), len(kept))
    kept.insert(min(position, len(kept)), host)
    return kept


def _drop_host(name: str, hosts: list[HostProfile]) -> list[HostProfile]:
    return [h for h in hosts if h.name != name]
