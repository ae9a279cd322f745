"""The columns of the Jobs table, in one table: adding a column is one line here.

Each column has its key, its header, its width (None: as wide as its cells) and how its cell is
drawn from the job and the host's rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text

from transfer.jobs.state import JobState, JobStatus
from transfer.telemetry.cost import job_cost, job_rate
from tui.job_styles import STATE_STYLES
from tui.text import NONE, cents, clock, one_line

#: Characters of a job name in the list.
NAME_WIDTH = 32

Cell = str | Text


@dataclass(frozen=True)
class JobColumn:
    key: str
    header: str
    width: int | None
    cell: Callable[[JobStatus, float], Cell]


def state_cell(job: JobStatus) -> Text:
    """The state, with the signal that stopped it or what a running or lost job reports."""
    state = Text(job.state.value, style=STATE_STYLES[job.state])
    if job.state is JobState.STOPPED and job.stop_signals:
        state.append(f" (SIG{job.stop_signals[-1].name})", style="dim")
    elif job.detail and job.state in (JobState.RUNNING, JobState.LOST):
        state.append(f" ({job.detail})", style="dim")
    return state


def cost_cell(job: JobStatus, host_rate: float) -> str:
    """The rate recorded at launch × runtime (``transfer.telemetry.cost``)."""
    rate = job_rate(job.meta.rate_usd_per_hour, host_rate)
    return cents(job_cost(rate, job.runtime_s).so_far)


JOB_COLUMNS: tuple[JobColumn, ...] = (
    JobColumn("name", "NAME", None, lambda job, _rate: Text(one_line(job.name, NAME_WIDTH))),
    JobColumn("state", "STATE", None, lambda job, _rate: state_cell(job)),
    JobColumn("runtime", "RUNTIME", None, lambda job, _rate: clock(job.runtime_s)),
    JobColumn(
        "exit", "EXIT", None,
        lambda job, _rate: NONE if job.exit_code is None else str(job.exit_code),
    ),
    JobColumn("cost", "COST", None, cost_cell),
)
