"""One job's log, full screen: follows the tail, pauses on scroll, searches, wraps."""

from __future__ import annotations

from pathlib import PurePath
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from transfer.hosts import HostProfile
from transfer.jobs.host import HostJobs
from transfer.jobs.state import JobStatus
from tui.text import one_line
from tui.widgets.job_log import JobLogView
from tui.widgets.log_lines import DEFAULT_MAX_LINES


class LogScreen(Screen[None]):
    """Esc goes back; the job keeps running either way."""

    CSS_PATH: ClassVar[list[str | PurePath]] = [
        "../styles/log_lines.tcss",
        "../styles/log_view.tcss",
        "../styles/log_screen.tcss",
    ]
    BINDINGS: ClassVar = [
        Binding("escape", "back", "Back", id="log.back"),
    ]

    def __init__(self, jobs: HostJobs, job: JobStatus, host: HostProfile) -> None:
        super().__init__()
        self.jobs = jobs
        self.job = job
        self.host = host

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self._title(), id="log-screen-title", markup=False)
        yield JobLogView(max_lines=DEFAULT_MAX_LINES, id="log-screen-view")
        yield Footer()

    def _title(self) -> str:
        job = self.job
        command = one_line((job.meta.command.strip().splitlines() or [""])[0], 200)
        return f"{one_line(job.name, 60)}  ·  {job.id} on {self.host.name}  ·  {command}"

    def on_mount(self) -> None:
        self.sub_title = f"{self.job.id} on {self.host.name}"
        view = self.query_one(JobLogView)
        view.follow(self.jobs, self.job)
        view.log_lines.focus()

    def action_back(self) -> None:
        self.query_one(JobLogView).stop_following()
        self.dismiss()
