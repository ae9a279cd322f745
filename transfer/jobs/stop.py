"""Stopping a job: SIGTERM to its process group, a grace period, then SIGKILL.

The signalling runs on the host, detached (``scripts/stop.sh``), so the SIGKILL after the grace
period comes even when the laptop sleeps or the link drops. Each signal sent is recorded in the
job's ``stop`` file, which is how the state tells "stopped" from "failed" and says which signal
ended it.
"""

from __future__ import annotations

import asyncio
import time

from transfer.errors import GputuiError
from transfer.jobs.host import HostJobs, sh_command
from transfer.jobs.state import JobStatus
from transfer.scripts import load

DEFAULT_GRACE_S = 60.0
#: How long past the grace period a stop may take before we say it did not work.
SETTLE_S = 15.0


class StopFailed(GputuiError):
    """The job was still running well after its grace period."""


async def request_stop(jobs: HostJobs, job_id: str, *, grace_s: float = DEFAULT_GRACE_S) -> None:
    """Start the host-side stopper; ``grace_s`` 0 sends SIGKILL at once."""
    tenths = max(0, round(grace_s * 10))
    stopper = sh_command(load("stop.sh"), "gputui-stop", await jobs.job_dir(job_id), str(tenths))
    detached = (
        f"if command -v setsid >/dev/null 2>&1; then setsid nohup {stopper} "
        f"</dev/null >/dev/null 2>&1 & else nohup {stopper} </dev/null >/dev/null 2>&1 & fi"
    )
    await jobs.link.run(detached, check=True)


async def stop_job(
    jobs: HostJobs,
    job_id: str,
    *,
    grace_s: float = DEFAULT_GRACE_S,
    wait: bool = True,
    poll_s: float = 0.25,
) -> JobStatus:
    """Stop ``job_id`` and (with ``wait``) return its state once it has ended."""
    status = await jobs.status(job_id)
    if not status.state.is_active:
        return status
    await request_stop(jobs, job_id, grace_s=grace_s)
    if not wait:
        return await jobs.status(job_id)
    deadline = time.monotonic() + grace_s + SETTLE_S
    while True:
        await asyncio.sleep(poll_s)
        status = await jobs.status(job_id)
        if not status.state.is_active:
            return status
        if time.monotonic() > deadline:
            raise StopFailed(
                f"{job_id} on {jobs.host_name} still runs {grace_s + SETTLE_S:g} s after the stop"
            )
