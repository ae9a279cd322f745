"""One host's dashboard: who it is and how it answered, then the Jobs, Logs, Metrics, Transfers
and GPU panes.

The panes sit in a grid that follows the terminal's width: three columns from 160 cells (the log
runs the full height in the middle), two from 100, and one below that, where the panes stack at
fixed heights and scroll. Each pane is one key away (1–5, tab and shift+tab go round them).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import ClassVar

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Static

from transfer.hosts import HostProfile
from tui.actions import (
    DASHBOARD_ACTIONS,
    DASHBOARD_PANES,
    HOST_SCREEN_ACTIONS,
    JOB_ACTIONS,
    ActionSpec,
    bindings,
)
from tui.host_status import UNKNOWN, HostStatus
from tui.screens.job_actions import JobActions
from tui.screens.log_screen import LogScreen
from tui.screens.pull_prompt import PullPromptScreen
from tui.services.base import ServicesApp, services_of
from tui.widgets.gpu_panel import GpuPanel
from tui.widgets.jobs_pane import JobsPane
from tui.widgets.logs_pane import LogsPane
from tui.widgets.metrics_pane import MetricsPane
from tui.widgets.transfers_pane import TRANSFER_ACTIONS, TransfersPane


class HostScreen(Screen[None]):
    """Follows its host by name: an edit shows at once, a delete closes the screen."""

    ACTIONS: ClassVar[tuple[ActionSpec, ...]] = (
        HOST_SCREEN_ACTIONS + TRANSFER_ACTIONS + JOB_ACTIONS + DASHBOARD_ACTIONS
    )
    BINDINGS: ClassVar = bindings(
        HOST_SCREEN_ACTIONS + TRANSFER_ACTIONS + JOB_ACTIONS + DASHBOARD_ACTIONS
    )
    CSS_PATH: ClassVar[list[str | PurePath]] = [
        "../styles/jobs_pane.tcss",
        "../styles/logs_pane.tcss",
        "../styles/log_lines.tcss",
        "../styles/log_view.tcss",
        "../styles/transfers_pane.tcss",
        "../styles/metrics_pane.tcss",
    ]
    HORIZONTAL_BREAKPOINTS = [
        (0, "-narrow"),
        (100, "-medium"),
        (160, "-wide"),
    ]
    AUTO_FOCUS = "JobsPane DataTable"

    def __init__(self, host_name: str) -> None:
        super().__init__()
        self.host_name = host_name
        self.job_actions = JobActions(self, host_name)

    @property
    def services(self) -> ServicesApp:
        return services_of(self)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="host-summary")
        with Grid(id="panes"):  # in focus order; host_screen.tcss places them per width
            yield JobsPane(self.host_name, id="jobs")
            yield LogsPane(id="logs")
            yield MetricsPane(self.host_name, id="metrics")
            yield TransfersPane(self.host_name, id="transfers")
            yield GpuPanel(self.host_name, id="gpu")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.host_name
        for pane_id, key, title in DASHBOARD_PANES:  # the key that reaches each pane, on its frame
            self.query_one(f"#{pane_id}", Widget).border_title = rf"\[{key}] {title}"
        self.services.hosts_changed.subscribe(self, self._hosts_changed)
        self.refresh_summary()

    def _hosts_changed(self, _: None) -> None:
        self.refresh_summary()

    def refresh_summary(self) -> None:
        host = self.services.host_named(self.host_name)
        if host is None:
            if self.is_current:
                self.dismiss()
            return
        status = self.services.statuses.get(host.name, HostStatus())
        self.query_one("#host-summary", Static).update(summary(host, status))

    def on_jobs_pane_highlighted(self, message: JobsPane.Highlighted) -> None:
        self.query_one(LogsPane).follow(message.jobs, message.job)
        self.query_one(MetricsPane).follow(message.jobs, message.job)

    def on_jobs_pane_open_log(self, message: JobsPane.OpenLog) -> None:
        self.app.push_screen(LogScreen(message.jobs, message.job, message.host))

    # -- moving between the panes ------------------------------------------------------------
    def pane_of(self, widget: Widget | None) -> str | None:
        """The id of the dashboard pane that ``widget`` sits in."""
        ids = {pane for pane, _, _ in DASHBOARD_PANES}
        for node in widget.ancestors_with_self if widget is not None else ():
            if node.id in ids:
                return node.id
        return None

    def action_focus_pane(self, pane_id: str) -> None:
        """Focus the pane's first focusable widget (its table, its log), else the pane itself."""
        pane = self.query_one(f"#{pane_id}", Widget)
        inside = (w for w in self.focus_chain if w is not pane and pane in w.ancestors)
        target = next(inside, None)
        if target is None:
            pane.can_focus = True  # nothing in it takes the focus yet (no jobs, no log to show)
            target = pane
        target.focus(scroll_visible=False)
        pane.scroll_visible(animate=False)

    def action_next_pane(self) -> None:
        self._step_pane(1)

    def action_previous_pane(self) -> None:
        self._step_pane(-1)

    def _step_pane(self, step: int) -> None:
        order = [pane for pane, _, _ in DASHBOARD_PANES]
        current = self.pane_of(self.focused)
        index = order.index(current) + step if current in order else 0 if step > 0 else -1
        self.action_focus_pane(order[index % len(order)])

    def action_back(self) -> None:
        self.dismiss()

    def action_test_host(self) -> None:
        self.services.test_host(self.host_name)

    # -- transfers (they belong to the app and outlive this screen) ----------------------------
    def action_push(self) -> None:
        host = self.services.host_named(self.host_name)
        if host is not None:
            self.query_one(TransfersPane).push(host)

    def action_pull(self) -> None:
        """Ask what to pull, offering the selected job's output folder (checkpoints, adapter)."""
        if self.services.host_named(self.host_name) is not None:
            self.run_worker(self._ask_pull(), group=f"pull-prompt:{self.host_name}",
                            exclusive=True, exit_on_error=False)

    async def _ask_pull(self) -> None:
        job = self.query_one(JobsPane).selected()
        folder = self.services.jobs.output_folder
        default = await folder(self.host_name, job) if job is not None else None
        host = self.services.host_named(self.host_name)
        if host is not None and self.is_current:
            self.app.push_screen(PullPromptScreen(host, default=default),
                                 callback=self._pull_answered)

    def _pull_answered(self, path: str | None) -> None:
        host = self.services.host_named(self.host_name)
        if path and host is not None:
            self.query_one(TransfersPane).pull(host, path)

    # -- jobs: the keys work anywhere on the screen and act on the Jobs pane's selection --------
    def action_new_job(self) -> None:
        self.job_actions.new_job()

    def action_run_setup(self) -> None:
        self.job_actions.run_setup()

    def action_open_log(self) -> None:
        self.query_one(JobsPane).open_log()

    def action_stop_job(self) -> None:
        self.job_actions.stop()

    def action_resume_job(self) -> None:
        self.job_actions.resume()

    def action_kill_job(self) -> None:
        self.job_actions.kill()

    def action_attach(self) -> None:
        self.job_actions.attach()


def open_host(app: ServicesApp, name: str) -> None:
    """Open the dashboard of the host named ``name``, or say there is none."""
    if app.host_named(name) is None:
        app.notify(f"no host named {name!r}", severity="error")
        return
    app.push_screen(HostScreen(name))


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
