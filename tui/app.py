"""The gputui Textual app: the host list first, a dashboard per host.

The app owns the host profiles and what the last test of each host found; screens draw them and
listen to ``hosts_changed``. Every file read or write runs in a thread worker and every
connection in an async worker, so the screen keeps drawing while a host takes its time.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable
from functools import partial
from pathlib import PurePath
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.signal import Signal

from transfer.errors import ConfigError, GputuiError, HostKeyChanged
from transfer.hosts import HostProfile, HostStore, local_host
from tui import host_checks
from tui.actions import APP_ACTIONS, ActionSpec, bindings
from tui.commands import GputuiCommands
from tui.host_status import HostStatus
from tui.screens.help import HelpScreen
from tui.screens.host_list import HostListScreen
from tui.screens.host_screen import HostScreen
from tui.screens.trust_key import TrustKeyScreen
from tui.telemetry import FleetTelemetry

if TYPE_CHECKING:
    from transfer.hostkeys import HostKeyInfo

_STARTED_NS = time.perf_counter_ns()


class GputuiApp(App[None]):
    """Manage GPU hosts from one keyboard-driven screen."""

    TITLE = "gputui"
    CSS_PATH: ClassVar[list[str | PurePath]] = [
        "styles/app.tcss",
        "styles/host_list.tcss",
        "styles/host_form.tcss",
        "styles/dialogs.tcss",
        "styles/host_screen.tcss",
        "styles/help.tcss",
        "styles/gpu_panel.tcss",
    ]
    ACTIONS: ClassVar[tuple[ActionSpec, ...]] = APP_ACTIONS
    BINDINGS: ClassVar = bindings(APP_ACTIONS)
    COMMANDS: ClassVar = App.COMMANDS | {GputuiCommands}

    def __init__(self, store: HostStore | None = None, start_host: str | None = None) -> None:
        super().__init__()
        self.store = store or HostStore()
        self.start_host = start_host
        self.hosts: list[HostProfile] = [local_host()]
        self.statuses: dict[str, HostStatus] = {}
        self.config_error: str | None = None
        self.hosts_loaded = False
        self.hosts_changed: Signal[None] = Signal(self, "hosts-changed")
        self.telemetry = FleetTelemetry(self)

    def get_default_screen(self) -> Screen[None]:
        return HostListScreen()

    def on_mount(self) -> None:
        self.load_hosts()

    def on_ready(self) -> None:
        # The widgets, styles and modules made at start-up live as long as the app: freezing them
        # keeps the collector's full passes (the longest frame stalls under a fast log) short.
        gc.freeze()
        elapsed_ms = (time.perf_counter_ns() - _STARTED_NS) / 1e6
        self.log.info(f"gputui started in {elapsed_ms:.0f} ms")

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's own commands, less the ones gputui already lists under its own names."""
        for command in super().get_system_commands(screen):
            if command.title != "Quit":
                yield command

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
        if first_load and self.start_host:
            self.open_host(self.start_host)

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
    def _write_hosts(
        self, change: partial[list[HostProfile]], done: str
    ) -> None:
        try:
            self.store.update(change)
        except (GputuiError, OSError) as exc:
            self.call_from_thread(self.notify, str(exc), title="Not saved", severity="error")
        else:
            self.call_from_thread(self.notify, done)
        hosts, error = _read_hosts(self.store)
        self.call_from_thread(self._show_loaded, hosts, error)

    # -- tests and host keys -------------------------------------------------------------
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
                await self._offer_trust(host, changed=status.state == "key-changed")
            else:
                self.notify(status.message, title=f"{host.name} not reachable", severity="error")
            return
        status = HostStatus.from_report(report)
        self.set_status(host.name, status)
        self.notify(f"{host.name}: {status.message}", title="Host test")

    async def _offer_trust(self, host: HostProfile, *, changed: bool) -> None:
        try:
            info = await host_checks.fetch_key(host)
        except Exception as exc:
            self.notify(str(exc), title=f"No host key from {host.name}", severity="error")
            return
        self.push_screen(
            TrustKeyScreen(host, info, changed=changed),
            callback=partial(self._trust_answered, host, info),
        )

    def _trust_answered(self, host: HostProfile, info: HostKeyInfo, trusted: bool | None) -> None:
        if trusted:
            self._trust(host, info)

    @work(thread=True, group="known-hosts", description="Writing known_hosts")
    def _trust(self, host: HostProfile, info: HostKeyInfo) -> None:
        try:
            host_checks.trust_key(host, info)
        except HostKeyChanged as exc:
            self.call_from_thread(self.set_status, host.name, host_checks.status_from_error(exc))
            self.call_from_thread(
                self.notify, str(exc), title="Host key CHANGED", severity="error", timeout=30
            )
            return
        except (GputuiError, OSError) as exc:
            self.call_from_thread(self.notify, str(exc), title="Not trusted", severity="error")
            return
        self.call_from_thread(self.notify, f"Trusted {info.key_type} {info.fingerprint}")
        self.call_from_thread(self.test_host, host.name)

    # -- navigation ---------------------------------------------------------------------
    def open_host(self, name: str) -> None:
        if self.host_named(name) is None:
            self.notify(f"no host named {name!r}", severity="error")
            return
        self.push_screen(HostScreen(name))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))


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
