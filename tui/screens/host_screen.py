"""One host's dashboard: who it is and how it answered, then the Transfers, Jobs, Logs and GPU
panes."""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING, ClassVar, cast

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from transfer.hosts import HostProfile
from tui.actions import HOST_SCREEN_ACTIONS, ActionSpec, bindings
from tui.host_status import UNKNOWN, HostStatus
from tui.screens.log_screen import LogScreen
from tui.screens.pull_prompt import PullPromptScreen
from tui.widgets.gpu_panel import GpuPanel
from tui.widgets.jobs_pane import JobsPane
from tui.widgets.logs_pane import LogsPane
from tui.widgets.transfers_pane import TRANSFER_ACTIONS, TransfersPane

if TYPE_CHECKING:
    from tui.app import GputuiApp


class HostScreen(Screen[None]):
    """Follows its host by name: an edit shows at once, a delete closes the screen."""

    ACTIONS: ClassVar[tuple[ActionSpec, ...]] = HOST_SCREEN_ACTIONS + TRANSFER_ACTIONS
    BINDINGS: ClassVar = bindings(HOST_SCREEN_ACTIONS + TRANSFER_ACTIONS)
    CSS_PATH: ClassVar[list[str | PurePath]] = ["../styles/transfers_pane.tcss"]
    AUTO_FOCUS = "JobsPane DataTable"

    def __init__(self, host_name: str) -> None:
        super().__init__()
        self.host_name = host_name

    @property
    def gputui(self) -> GputuiApp:
        return cast("GputuiApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="host-summary")
        with Grid(id="panes"):
            yield TransfersPane(self.host_name, id="transfers")
            yield JobsPane(self.host_name, id="jobs")
            yield LogsPane(id="logs")
            yield GpuPanel(self.host_name, id="gpu")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.host_name
        self.gputui.hosts_changed.subscribe(self, self._hosts_changed)
        self.refresh_summary()

    def _hosts_changed(self, _: None) -> None:
        self.refresh_summary()

    def refresh_summary(self) -> None:
        host = self.gputui.host_named(self.host_name)
        if host is None:
            if self.is_current:
                self.dismiss()
            return
        status = self.gputui.statuses.get(host.name, HostStatus())
        self.query_one("#host-summary", Static).update(summary(host, status))

    def on_jobs_pane_highlighted(self, message: JobsPane.Highlighted) -> None:
        self.query_one(LogsPane).follow(message.jobs, message.job)

    def on_jobs_pane_open_log(self, message: JobsPane.OpenLog) -> None:
        self.app.push_screen(LogScreen(message.jobs, message.job, message.host))

    def action_back(self) -> None:
        self.dismiss()

    def action_test_host(self) -> None:
        self.gputui.test_host(self.host_name)

    # -- transfers (they belong to the app and outlive this screen) ----------------------------
    def action_push(self) -> None:
        host = self.gputui.host_named(self.host_name)
        if host is not None:
            self.query_one(TransfersPane).push(host)

    def action_pull(self) -> None:
        host = self.gputui.host_named(self.host_name)
        if host is not None:
            self.app.push_screen(PullPromptScreen(host), callback=self._pull_answered)

    def _pull_answered(self, path: str | None) -> None:
        host = self.gputui.host_named(self.host_name)
        if path and host is not None:
            self.query_one(TransfersPane).pull(host, path)


def summary(host: HostProfile, status: HostStatus) -> Table:
    """Two columns of label and value: the profile on the left, the last test on the right."""
    grid = Table.grid(padding=(0, 2), expand=True)
    for _ in range(2):
        grid.add_column(width=12, no_wrap=True)
        grid.add_column(ratio=1)
    rate = f"${host.rate_usd_per_hour:.2f}/h" if host.rate_usd_per_hour else UNKNOWN
    rows: list[tuple[str, RenderableType, str, RenderableType]] = [
        ("Host", Text(host.name, style="bold"), "Reachability", status.reachability()),
        ("Address", host.address, "GPUs", status.gpu_summary()),
        ("Provider", host.provider or UNKNOWN, "Rate", rate),
        ("Workdir", host.workdir, "Tags", ", ".join(host.tags) or UNKNOWN),
    ]
    for label, value, label2, value2 in rows:
        grid.add_row(Text(label, style="dim"), value, Text(label2, style="dim"), value2)
    return grid
