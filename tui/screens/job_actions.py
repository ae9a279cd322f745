"""The job keys of a host screen: each asks first (a dialog), then asks ``app.jobs`` to act.

``n`` new job (a training config of the project, or any command), ``u`` the host's setup command,
``s`` stop (SIGTERM so the trainer saves a checkpoint, then SIGKILL after the grace period), ``R``
resume a stopped or preempted job (unless a later job already resumed it), ``S`` kill at once, and
``a`` attach to its tmux session. They act on the Jobs pane's selection.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual.app import SuspendNotSupported
from textual.notifications import SeverityLevel
from textual.screen import Screen

from transfer.errors import GputuiError
from transfer.hosts import HostProfile
from transfer.jobs.attach import attach_argv
from transfer.jobs.resume import can_resume, resumed_by
from transfer.jobs.state import JobMeta, JobStatus
from transfer.jobs.stop import DEFAULT_GRACE_S
from tui.screens.confirm import ConfirmScreen
from tui.screens.new_job import NewJobScreen
from tui.services.base import ServicesApp, services_of
from tui.text import one_line, terminal_safe
from tui.widgets.jobs_pane import JobsPane

#: Characters of a job name in a question or a notification.
NAME_IN_TEXT = 60


def run_in_terminal(argv: list[str]) -> None:
    """Run a program on the person's terminal (the app is suspended meanwhile)."""
    subprocess.run(argv, check=False)


def name_of(job: JobStatus | JobMeta) -> str:
    """A job's name (the host's text) for a sentence: one line, control characters escaped."""
    return one_line(job.name, NAME_IN_TEXT)


class JobActions:
    """The job actions of one host screen."""

    def __init__(self, screen: Screen[None], host_name: str) -> None:
        self.screen = screen
        self.host_name = host_name

    @property
    def services(self) -> ServicesApp:
        return services_of(self.screen)

    @property
    def pane(self) -> JobsPane:
        return self.screen.query_one(JobsPane)

    def host(self) -> HostProfile | None:
        return self.services.host_named(self.host_name)

    def notify(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information"
    ) -> None:
        self.screen.notify(message, title=title, severity=severity, markup=False)

    def _failed(self, exc: GputuiError, title: str, severity: SeverityLevel = "error") -> None:
        """A failure in its own words, which may quote the host: control characters escaped."""
        self.notify(terminal_safe(str(exc)), title=title, severity=severity)

    def _confirm(self, question: str, label: str, then: Callable[[], object]) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.screen.app.push_screen(ConfirmScreen(question, confirm_label=label), answered)

    def _run(self, work: Coroutine[Any, Any, None], group: str | None = None) -> None:
        """Run ``work`` on the screen; launches share a group, so they queue per host."""
        self.screen.run_worker(
            work, group=group or f"jobs-launch:{self.host_name}", exit_on_error=False
        )

    # -- launching ------------------------------------------------------------------------------
    def new_job(self) -> None:
        """A training config of this project (the folder ``p`` pushes) or any command."""
        host = self.host()
        if host is not None:
            self.screen.app.push_screen(NewJobScreen(host, Path.cwd()), self._launch_answered)

    def _launch_answered(self, request: tuple[str, str] | None) -> None:
        if request is not None:
            command, name = request
            self._run(self._launch(command, name or None))

    async def _launch(self, command: str, name: str | None) -> None:
        if self.services.jobs.source(self.host_name) is None:
            self.notify("Not connected yet; try again in a moment.", severity="warning")
            return
        try:
            meta = await self.services.jobs.launch(self.host_name, command, name)
        except GputuiError as exc:
            self._failed(exc, "Job not started")
            return
        await self._started(meta, "Job started")

    async def _started(self, meta: JobMeta, title: str) -> None:
        self.pane.keep_cursor_on(meta.id)
        self.notify(f"{name_of(meta)} started as {meta.id}", title=title)
        await self.services.jobs.list_now(self.host_name)

    def run_setup(self) -> None:
        """The host's setup command (``gputui setup HOST``), as a job named ``setup``."""
        host = self.host()
        if host is None:
            return
        command = host.setup_command
        if not command:
            self.notify(
                f"{host.name} has no setup command; add one with "
                f"`gputui hosts add {host.name} --replace … --setup CMD`",
                title="No setup command",
                severity="warning",
            )
            return
        question = (
            f"Run the setup command of {escape(host.name)} as a job?\n\n"
            f"  {escape(one_line(command, 200))}\n\n"
            f"It runs in {escape(host.workdir)}; its log shows in the Logs pane."
        )
        self._confirm(question, "Run setup", lambda: self._run(self._launch(command, "setup")))

    # -- stopping ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Graceful: SIGTERM now, SIGKILL after the grace period if it is still running."""
        job = self.pane.selected()
        if job is None:
            return
        if not job.state.is_active:
            self.notify(f"{name_of(job)} has already ended ({job.state_text}).")
            return
        question = (
            f"Stop {escape(name_of(job))}?\n"
            "SIGTERM now: gputui's trainer saves a checkpoint and exits 143, and R resumes it. "
            f"SIGKILL follows in {DEFAULT_GRACE_S:g} s if it still runs."
        )
        self._confirm(
            question, "Stop", lambda: self._run(self._stop(job, DEFAULT_GRACE_S), "default")
        )

    def kill(self) -> None:
        """Immediate: SIGKILL with no grace period, after a confirmation."""
        job = self.pane.selected()
        if job is None or not job.state.is_active:
            return
        question = (
            f"Kill {escape(name_of(job))} now with SIGKILL?\n"
            "It gets no chance to save a checkpoint (s stops it gracefully)."
        )
        self._confirm(question, "Kill", lambda: self._run(self._stop(job, 0.0), "default"))

    async def _stop(self, job: JobStatus, grace_s: float) -> None:
        try:
            await self.services.jobs.stop(self.host_name, job.id, grace_s)
        except GputuiError as exc:
            self._failed(exc, "Not stopped")
            return
        if grace_s:
            self.notify(
                f"SIGTERM sent to {name_of(job)}; "
                f"SIGKILL follows in {grace_s:g} s if it still runs.",
                title="Stopping",
            )
        else:
            self.notify(f"SIGKILL sent to {name_of(job)}.", title="Killed")
        await self.services.jobs.list_now(self.host_name)

    # -- resuming ---------------------------------------------------------------------------------
    def resume(self) -> None:
        """The same command in the same folder again; gputui's trainer resumes by itself."""
        job = self.pane.selected()
        if job is None:
            return
        if not can_resume(job):
            done = "is still running" if job.state.is_active else "finished its work"
            self.notify(f"{name_of(job)} {done}: nothing to resume.")
            return
        later = resumed_by(job, self.pane.jobs)
        if later is not None:
            self.notify(f"{name_of(job)} was resumed already, as {later.id}.")
            return
        command = one_line((job.meta.command.strip().splitlines() or [""])[0], 200)
        question = (
            f"Resume {escape(name_of(job))} ({escape(job.state_text)})?\n\n"
            f"  {escape(command)}\n\n"
            f"runs again in {escape(one_line(job.meta.workdir, 200))}; gputui's trainer goes on "
            "from its newest checkpoint."
        )
        self._confirm(question, "Resume", lambda: self._run(self._resume(job)))

    async def _resume(self, job: JobStatus) -> None:
        try:
            meta = await self.services.jobs.resume(self.host_name, job.id)
        except GputuiError as exc:
            self._failed(exc, "Not resumed")
            return
        await self._started(meta, "Job resumed")

    # -- attaching --------------------------------------------------------------------------------
    def attach(self) -> None:
        job, host = self.pane.selected(), self.host()
        if job is None or host is None:
            return
        try:
            argv = attach_argv(host, job)
        except GputuiError as exc:
            self._failed(exc, "Cannot attach", "warning")
            return
        try:
            with self.screen.app.suspend():
                run_in_terminal(argv)
        except SuspendNotSupported:
            self.notify(
                f"Attaching needs a terminal; run: {terminal_safe(' '.join(argv))}",
                title="Cannot attach here",
                severity="warning",
            )
        except OSError as exc:
            self.notify(f"cannot run {argv[0]}: {exc.strerror}", severity="error")
