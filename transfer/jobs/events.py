"""Plain event objects that job operations yield; the CLI prints them, the app posts them.

No UI imports here: the same events feed the CLI, the Textual app and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from transfer.jobs.state import JobStatus


@dataclass(frozen=True)
class LogLines:
    """A batch of complete log lines, carriage-return progress bars collapsed to their last state.

    ``offset`` is the byte offset just after the last of these lines: following again from it
    gives the next line, with nothing missed or repeated. ``partial`` is the current state of an
    unfinished last line (a progress bar being redrawn), or None.
    """

    lines: list[str]
    offset: int
    partial: str | None = None


@dataclass(frozen=True)
class LogReconnecting:
    """The link dropped while following; the tail retries after ``delay_s``."""

    attempt: int
    reason: str
    delay_s: float


@dataclass(frozen=True)
class LogResumed:
    """The link is back; following continues at ``offset``."""

    offset: int


@dataclass(frozen=True)
class LogEnded:
    """The job has ended (or was lost) and its log has been read to the end."""

    status: JobStatus | None


LogEvent = LogLines | LogReconnecting | LogResumed | LogEnded
