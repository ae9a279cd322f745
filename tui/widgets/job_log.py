"""A log view bound to one job: it follows the job's log on the host until the job ends.

It starts from the last lines the view can hold (the whole log stays on the host), rides out
dropped links (the status line says so), and says how the job ended.
"""

from __future__ import annotations

from textual.worker import Worker

from transfer.errors import GputuiError
from transfer.jobs.events import LogEnded, LogLines, LogReconnecting, LogResumed
from transfer.jobs.host import HostJobs
from transfer.jobs.logs import follow_log
from transfer.jobs.state import JobStatus
from tui.widgets.log_view import LogView


class JobLogView(LogView):
    """``follow(jobs, job)`` and it shows that job's log, live."""

    def __init__(self, *, max_lines: int = 20_000, id: str | None = None) -> None:
        super().__init__(max_lines=max_lines, id=id)
        self.job: JobStatus | None = None
        self._worker: Worker[None] | None = None
        self.ended: JobStatus | None = None

    def follow(self, jobs: HostJobs, job: JobStatus) -> None:
        """Show ``job``'s log from its last lines on, following it while it runs."""
        if self._worker is not None:
            self._worker.cancel()
        self.job = job
        self.ended = None
        self.log_lines.clear()
        self.log_lines.action_follow()
        self.set_note(job.state_text)
        self._worker = self.run_worker(
            self._follow(jobs, job),
            group=f"live:log:{id(self)}",
            exclusive=True,
            exit_on_error=False,
            description=f"Following the log of {job.id}",
        )

    def stop_following(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    async def _follow(self, jobs: HostJobs, job: JobStatus) -> None:
        try:
            async for event in follow_log(jobs, job.id, tail=self.log_lines.max_lines):
                if isinstance(event, LogLines):
                    self.write_lines(event.lines, event.partial)
                elif isinstance(event, LogReconnecting):
                    self.set_note(
                        f"link lost ({event.reason}); reconnecting, attempt {event.attempt}"
                    )
                elif isinstance(event, LogResumed):
                    self.set_note("reconnected")
                elif isinstance(event, LogEnded):
                    self.ended = event.status
                    self.set_note(event.status.state_text if event.status else "ended")
        except GputuiError as exc:
            self.set_note(f"cannot read the log: {exc}")
