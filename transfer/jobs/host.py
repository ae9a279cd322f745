"""The jobs on one host, reached through a Link: where they live, what state each is in.

One shell round trip (``scripts/probe_jobs.sh``) reads every job; the state rules live in
``state.py``.
"""

from __future__ import annotations

import os
import shlex

from trainers.protocol.jobdir import JOBS_DIR, LOG
from transfer.errors import GputuiError
from transfer.jobs.state import (
    HostFacts,
    JobStatus,
    derive_all,
    derive_status,
    is_job_id,
    parse_probe,
)
from transfer.link import Link
from transfer.scripts import load

#: Where jobs live on a host, relative to the login home unless absolute. The idle watchdog reads
#: the default place; the variable exists for a shared account and for tests.
JOBS_ROOT_ENV = "GPUTUI_HOST_JOBS_DIR"


class JobNotFound(GputuiError):
    """No job on the host matches what the person typed."""


def sh_command(script: str, name: str, *args: str) -> str:
    """``sh -c SCRIPT NAME ARGS…`` for the host's shell; each argument is unquoted exactly once."""
    return " ".join(["sh", "-c", shlex.quote(script), name, *(shlex.quote(a) for a in args)])


class HostJobs:
    """The job folder of one host."""

    def __init__(self, link: Link, root: str | None = None) -> None:
        self.link = link
        self._root_setting = root or os.environ.get(JOBS_ROOT_ENV) or f"~/{JOBS_DIR}"
        self._root: str | None = None

    @property
    def host_name(self) -> str:
        return self.link.host.name

    async def root(self) -> str:
        """The absolute jobs folder on the host."""
        if self._root is None:
            setting = self._root_setting
            if not setting.startswith(("/", "~")):
                setting = f"~/{setting}"
            self._root = (await self.link.expand(setting)).rstrip("/") or "/"
        return self._root

    async def job_dir(self, job_id: str) -> str:
        check_job_id(job_id)
        return f"{await self.root()}/{job_id}"

    async def log_path(self, job_id: str) -> str:
        return f"{await self.job_dir(job_id)}/{LOG}"

    async def probe(self, *job_ids: str) -> HostFacts:
        for job_id in job_ids:
            check_job_id(job_id)
        probe = sh_command(load("probe_jobs.sh"), "gputui-probe", await self.root(), *job_ids)
        result = await self.link.run(probe, check=True)
        return parse_probe(result.stdout)

    async def list(self) -> list[JobStatus]:
        """Every job on the host, oldest first."""
        return derive_all(await self.probe())

    async def status(self, job_id: str) -> JobStatus:
        facts = await self.probe(job_id)
        for job in facts.jobs:
            status = derive_status(job, facts.boot_id, facts.now)
            if status is not None:
                return status
        raise JobNotFound(f"no job {job_id!r} on {self.host_name}")

    async def resolve(self, ref: str) -> JobStatus:
        """The job that ``ref`` names: its id, its name (the newest such), or a unique id prefix.

        An empty ``ref`` names no job (as a prefix it would name every one).
        """
        if not ref:
            raise JobNotFound("the job reference is empty: give a job id, name or id prefix")
        jobs = await self.list()
        for job in jobs:
            if job.id == ref:
                return job
        named = [j for j in jobs if j.name == ref]
        if named:
            return named[-1]
        prefixed = [j for j in jobs if j.id.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            ids = ", ".join(j.id for j in prefixed[:5])
            raise JobNotFound(f"{ref!r} matches several jobs on {self.host_name}: {ids}")
        raise JobNotFound(f"no job {ref!r} on {self.host_name}; see `gputui jobs {self.host_name}`")


def check_job_id(job_id: str) -> None:
    """Job ids are made by gputui; anything else never reaches a host command line."""
    if not is_job_id(job_id):
        raise JobNotFound(f"{job_id!r} is not a job id")
