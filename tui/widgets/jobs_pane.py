"""The jobs of one host: name, state, runtime, exit code and cost so far; the loop's job actions.

The list comes from the host itself (the job folders), polled every few seconds with the next
poll armed only when the last one finished, so a slow host never piles up requests. When the
host stops answering, the last list stays on screen with its age.

Keys (``tui.actions.JOB_ACTIONS``; each asks first): ``n`` new job (a training config of the
project, or any command), ``u`` the host's setup command, ``s`` stop (SIGTERM so the trainer
saves a checkpoint, then SIGKILL after the grace period), ``R`` resume a stopped or preempted
job, ``S`` kill at once; and ``enter`` its log, ``a`` attach to its tmux session.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.widgets import DataTable, Static

from transfer.connect import open_link
from transfer.errors import GputuiError
from transfer.hosts import HostProfile, HostStore
from transfer.jobs.attach import attach_argv
from transfer.jobs.host import HostJobs
from transfer.jobs.launch import launch_job
from transfer.jobs.outputs import job_output_folder
from transfer.jobs.resume import PREEMPTED_EXIT_CODE, can_resume, is_preempted, resume_job
from transfer.jobs.state import JobMeta, JobState, JobStatus
from transfer.jobs.stop import DEFAULT_GRACE_S, request_stop
from tui.actions import JOB_ACTIONS, bindings
from tui.job_styles import STATE_STYLES
from tui.screens.confirm import ConfirmScreen
from tui.screens.new_job import NewJobScreen
from tui.text import one_line, terminal_safe
from tui.widgets.pane import Pane

POLL_S = 2.0
RETRY_S = (5.0, 10.0, 30.0)
NONE = "—"
#: Characters of a job name in the list, and in a question or a notification.
NAME_WIDTH = 32
NAME_IN_TEXT = 60


def open_host_jobs(host: HostProfile) -> HostJobs:
    """The jobs of ``host`` over a new, not yet connected link (tests swap this out)."""
    return HostJobs(open_link(host))


def run_in_terminal(argv: list[str]) -> None:
    """Run a program on the person's terminal (the app is suspended meanwhile)."""
    subprocess.run(argv, check=False)


def format_runtime(seconds: float | None) -> str:
    if seconds is None:
        return NONE
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_cost(status: JobStatus, rate: float) -> str:
    cost = status.cost_usd(rate)
    if cost is None or not rate:
        return NONE
    return f"${cost:,.2f}"


def name_of(job: JobStatus | JobMeta) -> str:
    """A job's name (the host's text) for a sentence: one line, control characters escaped."""
    return one_line(job.name, NAME_IN_TEXT)


def resumed_by(job: JobStatus, jobs: list[JobStatus]) -> JobStatus | None:
    """The newest later job that repeats ``job`` (same name, command and folder): its resume."""
    later = [
        other
        for other in jobs
        if other.meta.created_at > job.meta.created_at
        and (other.name, other.meta.command, other.meta.workdir)
        == (job.name, job.meta.command, job.meta.workdir)
    ]
    return max(later, key=lambda other: other.meta.created_at, default=None)


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

    DEFAULT_CSS = """
    JobsPane {
        #jobs-table { height: 1fr; display: none; }
        #jobs-table.-has-jobs { display: block; }
        #jobs-note { height: auto; color: $text-muted; }
        #jobs-note.-error { color: $error; }
        #jobs-hint { height: auto; color: $warning; display: none; }
        #jobs-hint.-shown { display: block; }
    }
    """

    BINDINGS: ClassVar = [
        *bindings(JOB_ACTIONS),
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
        self.source: HostJobs | None = None
        self.error: str | None = None
        self.listed_at: float | None = None
        self._failures = 0
        self._highlighted: str | None = None  # the job the cursor should stay on
        self._announced: str | None = None  # the job the Logs pane was last told about
        self._closed = False

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="jobs-table", cursor_type="row")
        table.add_column("NAME", key="name")
        table.add_column("STATE", key="state")
        table.add_column("RUNTIME", key="runtime")
        table.add_column("EXIT", key="exit")
        table.add_column("COST", key="cost")
        yield table
        yield Static(f"Connecting to {self.host_name}…", id="jobs-note", markup=False)
        yield Static("", id="jobs-hint", markup=False)

    @property
    def table(self) -> DataTable[str | Text]:
        return self.query_one("#jobs-table", DataTable)

    def host(self) -> HostProfile:
        finder = getattr(self.app, "host_named", None)
        found = finder(self.host_name) if finder is not None else None
        return found if isinstance(found, HostProfile) else HostStore().get(self.host_name)

    # -- polling --------------------------------------------------------------------------
    def on_mount(self) -> None:
        # The first listing is part of opening the screen; the later ones stream in the background.
        self.run_worker(self._poll(), group=f"jobs:{self.host_name}", exit_on_error=False)

    def on_unmount(self) -> None:
        self._closed = True
        source, self.source = self.source, None
        if source is not None:
            self.app.run_worker(source.link.close(), exit_on_error=False)

    def action_refresh_jobs(self) -> None:
        self.run_worker(self._poll(rearm=False), group=f"live:jobs:{self.host_name}:now")

    async def _poll(self, *, rearm: bool = True) -> None:
        try:
            if self.source is None:
                source = open_host_jobs(self.host())
                await source.link.connect()
                self.source = source
            jobs = await self.source.list()
        except GputuiError as exc:
            self._failures += 1
            self._show_error(terminal_safe(str(exc)))
            delay = RETRY_S[min(self._failures - 1, len(RETRY_S) - 1)]
        else:
            self._failures = 0
            self.error = None
            self.listed_at = time.monotonic()
            self._show(jobs)
            delay = POLL_S
        if rearm and not self._closed:
            self.set_timer(delay, self._next_poll)

    def _next_poll(self) -> None:
        if not self._closed:
            self.run_worker(self._poll(), group=f"live:jobs:{self.host_name}", exit_on_error=False)

    # -- drawing --------------------------------------------------------------------------
    def _show(self, jobs: list[JobStatus]) -> None:
        self.jobs = sorted(jobs, key=lambda j: (j.meta.created_at, j.id), reverse=True)
        rate = self.host().rate_usd_per_hour
        table = self.table
        wanted = [job.id for job in self.jobs]
        present = [str(key.value) for key in table.rows]
        if present != wanted:
            keep = table.cursor_row
            table.clear()
            for job in self.jobs:
                table.add_row(*self._cells(job, rate), key=job.id)
            if self._highlighted in wanted:
                table.move_cursor(row=wanted.index(self._highlighted), animate=False)
            elif self.jobs:
                table.move_cursor(row=min(keep, len(self.jobs) - 1), animate=False)
        else:
            for job in self.jobs:
                for column, value in zip(
                    ("name", "state", "runtime", "exit", "cost"),
                    self._cells(job, rate),
                    strict=True,
                ):
                    table.update_cell(job.id, column, value)
        table.set_class(bool(self.jobs), "-has-jobs")
        note = self.query_one("#jobs-note", Static)
        note.remove_class("-error")
        note.update("" if self.jobs else self.PLACEHOLDER)
        note.display = not self.jobs
        self.border_subtitle = f"{len(self.jobs)} job{'s' if len(self.jobs) != 1 else ''}"
        self._announce_highlight()

    def _cells(self, job: JobStatus, rate: float) -> tuple[str | Text, ...]:
        state = Text(job.state.value, style=STATE_STYLES[job.state])
        if job.state is JobState.STOPPED and job.stop_signals:
            state.append(f" (SIG{job.stop_signals[-1].name})", style="dim")
        elif job.detail and job.state in (JobState.RUNNING, JobState.LOST):
            state.append(f" ({job.detail})", style="dim")
        return (
            Text(one_line(job.name, NAME_WIDTH)),
            state,
            format_runtime(job.runtime_s),
            NONE if job.exit_code is None else str(job.exit_code),
            format_cost(job, rate),
        )

    def _show_error(self, message: str) -> None:
        self.error = message
        note = self.query_one("#jobs-note", Static)
        note.add_class("-error")
        if self.listed_at is not None:
            age = time.monotonic() - self.listed_at
            message = f"{message} (list from {age:.0f} s ago)"
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
        if job is None or self.source is None:
            return
        self._highlighted = job.id
        if job.id != self._announced:
            self._announced = job.id
            self.post_message(self.Highlighted(self.source, job))

    def _show_hint(self, job: JobStatus | None) -> None:
        hint = resume_hint(job, self.jobs) if job is not None else None
        shown = self.query_one("#jobs-hint", Static)
        shown.update(hint or "")
        shown.set_class(hint is not None, "-shown")

    @on(DataTable.RowSelected, "#jobs-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_log()

    # -- actions --------------------------------------------------------------------------
    def action_open_log(self) -> None:
        job = self.selected()
        if job is not None and self.source is not None:
            self.post_message(self.OpenLog(self.source, job, self.host()))

    def action_new_job(self) -> None:
        """A training config of this project (the folder ``p`` pushes) or any command."""
        self.app.push_screen(NewJobScreen(self.host(), Path.cwd()), self._launch)

    def _launch(self, request: tuple[str, str] | None) -> None:
        if request is None:
            return
        command, name = request
        self._start_launch(command, name or None)

    def _start_launch(self, command: str, name: str | None) -> None:
        self.run_worker(
            self._launch_job(command, name),
            group=f"jobs-launch:{self.host_name}",
            exit_on_error=False,
        )

    async def _launch_job(self, command: str, name: str | None) -> None:
        if self.source is None:
            self.notify("Not connected yet; try again in a moment.", severity="warning")
            return
        try:
            meta = await launch_job(self.source, command, name=name)
        except GputuiError as exc:
            self._failed(exc, "Job not started")
            return
        await self._started(meta, "Job started")

    async def _started(self, meta: JobMeta, title: str) -> None:
        self._highlighted = meta.id
        self.notify(f"{name_of(meta)} started as {meta.id}", title=title, markup=False)
        await self._poll(rearm=False)

    def _failed(self, exc: GputuiError, title: str, severity: SeverityLevel = "error") -> None:
        """A failure in its own words, which may quote the host: control characters escaped."""
        self.notify(terminal_safe(str(exc)), title=title, severity=severity, markup=False)

    def _confirm(self, question: str, label: str, then: Callable[[], object]) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.app.push_screen(ConfirmScreen(question, confirm_label=label), answered)

    def action_run_setup(self) -> None:
        """The host's setup command (``gputui setup HOST``), as a job named ``setup``."""
        host = self.host()
        command = host.setup_command
        if not command:
            self.notify(
                f"{host.name} has no setup command; add one with "
                f"`gputui hosts add {host.name} --replace … --setup CMD`",
                title="No setup command",
                severity="warning",
                markup=False,
            )
            return
        question = (
            f"Run the setup command of {escape(host.name)} as a job?\n\n"
            f"  {escape(one_line(command, 200))}\n\n"
            f"It runs in {escape(host.workdir)}; its log shows in the Logs pane."
        )
        self._confirm(question, "Run setup", lambda: self._start_launch(command, "setup"))

    def action_stop_job(self) -> None:
        """Graceful: SIGTERM now, SIGKILL after the grace period if it is still running."""
        job = self.selected()
        if job is None:
            return
        if not job.state.is_active:
            self.notify(f"{name_of(job)} has already ended ({job.state_text}).", markup=False)
            return
        question = (
            f"Stop {escape(name_of(job))}?\n"
            "SIGTERM now: gputui's trainer saves a checkpoint and exits 143, and R resumes it. "
            f"SIGKILL follows in {DEFAULT_GRACE_S:g} s if it still runs."
        )
        self._confirm(
            question,
            "Stop",
            lambda: self.run_worker(self._stop(job, DEFAULT_GRACE_S), exit_on_error=False),
        )

    def action_kill_job(self) -> None:
        """Immediate: SIGKILL with no grace period, after a confirmation."""
        job = self.selected()
        if job is None or not job.state.is_active:
            return
        question = (
            f"Kill {escape(name_of(job))} now with SIGKILL?\n"
            "It gets no chance to save a checkpoint (s stops it gracefully)."
        )
        self._confirm(
            question, "Kill", lambda: self.run_worker(self._stop(job, 0.0), exit_on_error=False)
        )

    async def _stop(self, job: JobStatus, grace_s: float) -> None:
        if self.source is None:
            return
        try:
            await request_stop(self.source, job.id, grace_s=grace_s)
        except GputuiError as exc:
            self._failed(exc, "Not stopped")
            return
        if grace_s:
            self.notify(
                f"SIGTERM sent to {name_of(job)}; "
                f"SIGKILL follows in {grace_s:g} s if it still runs.",
                title="Stopping",
                markup=False,
            )
        else:
            self.notify(f"SIGKILL sent to {name_of(job)}.", title="Killed", markup=False)
        await self._poll(rearm=False)

    def action_resume_job(self) -> None:
        """The same command in the same folder again; gputui's trainer resumes by itself."""
        job = self.selected()
        if job is None:
            return
        if not can_resume(job):
            done = "is still running" if job.state.is_active else "finished its work"
            self.notify(f"{name_of(job)} {done}: nothing to resume.", markup=False)
            return
        later = resumed_by(job, self.jobs)
        if later is not None:
            self.notify(f"{name_of(job)} was resumed already, as {later.id}.", markup=False)
            return
        command = one_line((job.meta.command.strip().splitlines() or [""])[0], 200)
        question = (
            f"Resume {escape(name_of(job))} ({escape(job.state_text)})?\n\n"
            f"  {escape(command)}\n\n"
            f"runs again in {escape(one_line(job.meta.workdir, 200))}; gputui's trainer goes on "
            "from its newest checkpoint."
        )
        self._confirm(
            question,
            "Resume",
            lambda: self.run_worker(
                self._resume(job), group=f"jobs-launch:{self.host_name}", exit_on_error=False
            ),
        )

    async def _resume(self, job: JobStatus) -> None:
        if self.source is None:
            return
        try:
            meta = await resume_job(self.source, job.id)
        except GputuiError as exc:
            self._failed(exc, "Not resumed")
            return
        await self._started(meta, "Job resumed")

    async def output_folder(self, job: JobStatus) -> str | None:
        """The job's output folder on the host (what ``P`` offers to pull), if it names one."""
        if self.source is None:
            return None
        return await job_output_folder(self.source, job)

    def action_attach(self) -> None:
        job = self.selected()
        if job is None:
            return
        try:
            argv = attach_argv(self.host(), job)
        except GputuiError as exc:
            self._failed(exc, "Cannot attach", "warning")
            return
        try:
            with self.app.suspend():
                run_in_terminal(argv)
        except SuspendNotSupported:
            self.notify(
                f"Attaching needs a terminal; run: {terminal_safe(' '.join(argv))}",
                title="Cannot attach here",
                severity="warning",
                markup=False,
            )
        except OSError as exc:
            self.notify(f"cannot run {argv[0]}: {exc.strerror}", severity="error", markup=False)
