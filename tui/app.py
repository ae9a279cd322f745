"""The gputui Textual app: the host list first, a dashboard per host.

The host profiles, their tests and the services (jobs, transfers, telemetry) are
``tui.services.base.ServicesApp``'s; the app adds the screens: which comes first, opening a host,
the dialog that trusts a host key, help, and the command palette.
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

from transfer.errors import GputuiError, HostKeyChanged
from transfer.hosts import HostProfile, HostStore
from tui import host_checks
from tui.actions import APP_ACTIONS, ActionSpec, bindings
from tui.commands import GputuiCommands
from tui.screens.host_list import HostListScreen
from tui.services.base import ServicesApp

if TYPE_CHECKING:
    from transfer.hostkeys import HostKeyInfo

_STARTED_NS = time.perf_counter_ns()


class GputuiApp(ServicesApp):
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
        super().__init__(store)
        self.start_host = start_host

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

    def hosts_first_loaded(self) -> None:
        if self.start_host:
            self.open_host(self.start_host)

    # -- host keys ------------------------------------------------------------------------
    async def offer_trust(self, host: HostProfile, *, changed: bool) -> None:
        try:
            info = await host_checks.fetch_key(host)
        except Exception as exc:
            self.notify(str(exc), title=f"No host key from {host.name}", severity="error")
            return
        from tui.screens.trust_key import TrustKeyScreen  # a dialog: loaded when first shown

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
        # The dashboard's modules (panes, plots, jobs) load on the first open, not at start-up.
        from tui.screens.host_screen import open_host

        open_host(self, name)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen  # not on the first frame: loaded when asked

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))
