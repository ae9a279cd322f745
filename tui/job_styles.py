"""How a job's state is coloured, the same in the app and in the CLI's tables."""

from __future__ import annotations

from transfer.jobs.state import JobState

STATE_STYLES = {
    JobState.STARTING: "yellow",
    JobState.RUNNING: "green",
    JobState.SUCCEEDED: "bold green",
    JobState.FAILED: "bold red",
    JobState.STOPPED: "magenta",
    JobState.LOST: "red",
}
