"""Resuming a job that was preempted or stopped: the same command, in the same folder.

gputui's trainer resumes by itself from its newest committed checkpoint when it is started again
with the same command, so a resume is a new job that repeats the old one's command, work folder
and environment. The new job keeps the old name, so that ``gputui logs HOST NAME`` finds the
newest run.
"""

from __future__ import annotations

from collections.abc import Iterable

from transfer.errors import GputuiError
from transfer.jobs.host import HostJobs
from transfer.jobs.launch import launch_job
from transfer.jobs.state import JobMeta, JobState, JobStatus

#: The exit code of a process ended by SIGTERM (128 + 15): what gputui's trainer exits with
#: after committing a checkpoint on a preemption notice.
PREEMPTED_EXIT_CODE = 143


class CannotResume(GputuiError):
    """The job is still running, or it finished its work."""


def is_preempted(job: JobStatus) -> bool:
    """True for a job that a signal ended before its work was done: it can be resumed."""
    if job.state is JobState.LOST:
        return True
    return job.state in (JobState.STOPPED, JobState.FAILED) and job.exit_code in (
        PREEMPTED_EXIT_CODE,
        137,
        130,
    )


def can_resume(job: JobStatus) -> bool:
    return not job.state.is_active and job.state is not JobState.SUCCEEDED


def resumed_by(job: JobStatus, jobs: Iterable[JobStatus]) -> JobStatus | None:
    """The newest later job that repeats ``job`` (same name, command and folder): its resume.

    "Later" is by launch time, not by list order, so a listing in any order gives one answer.
    """
    later = [
        other
        for other in jobs
        if other.meta.created_at > job.meta.created_at
        and (other.name, other.meta.command, other.meta.workdir)
        == (job.name, job.meta.command, job.meta.workdir)
    ]
    return max(later, key=lambda other: other.meta.created_at, default=None)


def waiting_for_resume(jobs: Iterable[JobStatus]) -> list[JobStatus]:
    """Preempted jobs (oldest first) that no later job has resumed yet."""
    listed = list(jobs)
    waiting = [job for job in listed if is_preempted(job) and resumed_by(job, listed) is None]
    return sorted(waiting, key=lambda job: (job.meta.created_at, job.id))


async def resume_job(jobs: HostJobs, ref: str) -> JobMeta:
    """Start the job that ``ref`` names again; return the new job."""
    old = await jobs.resolve(ref)
    if not can_resume(old):
        raise CannotResume(f"{old.id} on {jobs.host_name} is {old.state_text}: nothing to resume")
    return await launch_job(
        jobs,
        old.meta.command,
        name=old.meta.name,
        workdir=old.meta.workdir,
        env_activation=old.meta.env_activation,
        use_host_activation=False,
    )
