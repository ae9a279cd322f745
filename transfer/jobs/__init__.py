"""Detached jobs on a host: launch, state, stop, logs, attach.

A job lives in its own folder on the host (``protocol/jobdir.py``) and runs in a tmux session
named after its id, through a small POSIX-shell wrapper (``wrapper.py``). Everything here works
through a :class:`transfer.link.Link`, so the built-in ``local`` host and SSH hosts behave alike.
"""

from transfer.jobs.host import HostJobs, JobNotFound
from transfer.jobs.launch import command_from_argv, launch_job
from transfer.jobs.logs import follow_log, tail_lines
from transfer.jobs.state import JobMeta, JobState, JobStatus
from transfer.jobs.stop import DEFAULT_GRACE_S, stop_job

__all__ = [
    "DEFAULT_GRACE_S",
    "HostJobs",
    "JobMeta",
    "JobNotFound",
    "JobState",
    "JobStatus",
    "command_from_argv",
    "follow_log",
    "launch_job",
    "stop_job",
    "tail_lines",
]
