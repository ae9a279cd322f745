"""The log of the job highlighted in the Jobs pane, followed live (Enter there: full screen)."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult

from transfer.jobs.host import HostJobs
from transfer.jobs.state import JobStatus
from tui.text import one_line
from tui.widgets.job_log import JobLogView
from tui.widgets.pane import Pane


class LogsPane(Pane):
    TITLE = "Logs"
    PLACEHOLDER = "No log to follow. Select a job to tail its output here."

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield JobLogView(max_lines=5_000, id="logs-pane-view")

    def follow(self, jobs: HostJobs, job: JobStatus) -> None:
        """Show ``job``'s log here (the previous one stops)."""
        view = self.query_one(JobLogView)
        if view.job is not None and view.job.id == job.id:
            return
        self.query_one(".pane-placeholder").display = False
        view.add_class("-following")
        self.border_subtitle = escape(one_line(job.name))
        view.follow(jobs, job)
