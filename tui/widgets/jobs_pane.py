"""The jobs of one host: name, state, runtime, exit code and cost so far (``job_columns``).

The pane only draws: the list is the app's (``app.jobs`` polls the host while the pane follows
it, and keeps the last list with its age when the host stops answering), and the job keys
(``tui.actions.JOB_ACTIONS``: new job, setup, stop, resume, kill, log, attach) are the host
screen's actions, which ask first and act on :meth:`JobsPane.selected`. The pane tells the screen
which job is highlighted and which one Enter opened.
"""

from __future__ import annotations

import dataclasses
import time
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Static

from transfer.hosts import HostProfile
from transfer.jobs.host import HostJobs
from transfer.jobs.resume import PREEMPTED_EXIT_CODE, can_resume, is_preempted, resumed_by
from transfer.jobs.state import JobStatus
from tui.actions import JOB_ACTIONS, bindings
from tui.services.base import services_of
from tui.text import one_line
from tui.widgets.job_columns import JOB_COLUMNS
from tui.widgets.pane import Pane


def resume_hint(job: JobStatus, jobs: list[JobStatus]) -> str | None:
    """What the pane offers for a job that ended before its work was done."""
    if not can_resume(job):
        return None
    name = one_line(job.name, 40)
    later = resumed_by(job, jobs)
    if later is not None:
        return f"{name}: {job.state_text}; resumed as {later.id} ({later.state.value})"
    if job.exit_code == PREEMPTED_EXIT_CODE:
        return f"{name}: preempted (exit {job.exit_code}) — R to resume from its last checkpoint"
    if is_preempted(job):  # killed, interrupted or lost: a trainer still has its checkpoints
        return f"{name}: {job.state_text} — R to resume from its last checkpoint"
    return f"{name}: {job.state_text} — R to run it again"


class JobsPane(Pane):
    """The Jobs pane of a host screen."""

    TITLE = "Jobs"
    PLACEHOLDER = "No jobs yet. Press n to launch one; it keeps running when you disconnect."

    # The job keys run the screen's actions (it asks, then acts on this pane's selection).
    BINDINGS: ClassVar = [
        *bindings(tuple(dataclasses.replace(a, action=f"screen.{a.action}") for a in JOB_ACTIONS)),
        Binding("r", "refresh_jobs", "Refresh", show=False, id="jobs.refresh"),
    ]

    class Highlighted(Message):
        """The highlighted job changed: the Logs pane follows it."""

        def __init__(self, jobs: HostJobs, job: JobStatus) -> None:
            super().__init__()
            self.jobs = jobs
            self.job = job

    class OpenLog(Message):
        """Enter on a job: open its log full screen."""

        def __init__(self, jobs: HostJobs, job: JobStatus, host: HostProfile) -> None:
            super().__init__()
            self.jobs = jobs
            self.job = job
            self.host = host

    def __init__(self, host_name: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.host_name = host_name
        self.jobs: list[JobStatus] = []
        self.error: str | None = None
        self._following = False
        self._highlighted: str | None = None  # the job the cursor should stay on
        self._announced: str | None = None  # the job the Logs pane was last told about

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="jobs-table", cursor_type="row")
        for column in JOB_COLUMNS:
            table.add_column(column.header, key=column.key, width=column.width)
        yield table
        yield Static(f"Connecting to {self.host_name}…", id="jobs-note", markup=False)
        yield Static("", id="jobs-hint", markup=False)

    @property
    def table(self) -> DataTable[str | Text]:
        return self.query_one("#jobs-table", DataTable)

    @property
    def source(self) -> HostJobs | None:
        """The host's jobs, once connected."""
        return services_of(self).jobs.source(self.host_name)

    def host(self) -> HostProfile | None:
        return services_of(self).host_named(self.host_name)

    # -- following the app's list ---------------------------------------------------------------
    def on_mount(self) -> None:
        services = services_of(self)
        services.jobs.changed.subscribe(self, self._changed)
        host = self.host()
        if host is None:
            self._show_error(f"no host named {self.host_name!r}")
            return
        services.jobs.follow(host)
        self._following = True

    def on_unmount(self) -> None:
        if self._following:
            self._following = False
            services_of(self).jobs.unfollow(self.host_name)

    def action_refresh_jobs(self) -> None:
        services_of(self).jobs.refresh(self.host_name)

    def keep_cursor_on(self, job_id: str) -> None:
        """Put the cursor on ``job_id`` when it is listed (a job just launched)."""
        self._highlighted = job_id

    def _changed(self, name: str) -> None:
        listing = services_of(self).jobs.listing(name) if name == self.host_name else None
        if listing is None or not self.is_attached:
            return
        if listing.error is not None:
            self._show_error(listing.error, listing.listed_at)
        else:
            self.error = None
            self._show(listing.jobs)

    # -- drawing --------------------------------------------------------------------------
    def _show(self, jobs: list[JobStatus]) -> None:
        self.jobs = list(jobs)
        host = self.host()
        rate = host.rate_usd_per_hour if host is not None else 0.0
        table = self.table
        wanted = [job.id for job in self.jobs]
        present = [str(key.value) for key in table.rows]
        if present != wanted:
            keep = table.cursor_row
            table.clear()
            for job in self.jobs:
                table.add_row(*(c.cell(job, rate) for c in JOB_COLUMNS), key=job.id)
            if self._highlighted in wanted:
                table.move_cursor(row=wanted.index(self._highlighted), animate=False)
            elif self.jobs:
                table.move_cursor(row=min(keep, len(self.jobs) - 1), animate=False)
        else:
            for job in self.jobs:
                for column in JOB_COLUMNS:
                    table.update_cell(job.id, column.key, column.cell(job, rate))
        table.set_class(bool(self.jobs), "-has-jobs")
        note = self.query_one("#jobs-note", Static)
        note.remove_class("-error")
        note.update("" if self.jobs else self.PLACEHOLDER)
        note.display = not self.jobs
        self.border_subtitle = f"{len(self.jobs)} job{'s' if len(self.jobs) != 1 else ''}"
        self._announce_highlight()

    def _show_error(self, message: str, listed_at: float | None = None) -> None:
        self.error = message
        note = self.query_one("#jobs-note", Static)
        note.add_class("-error")
        if listed_at is not None:
            message = f"{message} (list from {time.monotonic() - listed_at:.0f} s ago)"
        note.update(message)
        note.display = True

    # -- selection ------------------------------------------------------------------------
    def selected(self) -> JobStatus | None:
        if not self.jobs or not self.table.row_count:
            return None
        row = self.table.cursor_row
        return self.jobs[row] if 0 <= row < len(self.jobs) else None

    @on(DataTable.RowHighlighted, "#jobs-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._announce_highlight()

    def _announce_highlight(self) -> None:
        job = self.selected()
        self._show_hint(job)
        source = self.source
        if job is None or source is None:
            return
        self._highlighted = job.id
        if job.id != self._announced:
            self._announced = job.id
            self.post_message(self.Highlighted(source, job))

    def _show_hint(self, job: JobStatus | None) -> None:
        hint = resume_hint(job, self.jobs) if job is not None else None
        shown = self.query_one("#jobs-hint", Static)
        shown.update(hint or "")
        shown.set_class(hint is not None, "-shown")

    @on(DataTable.RowSelected, "#jobs-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.open_log()

    def open_log(self) -> None:
        """Ask the screen to open the selected job's log full screen."""
        job, source, host = self.selected(), self.source, self.host()
        if job is not None and source is not None and host is not None:
            self.post_message(self.OpenLog(source, job, host))
