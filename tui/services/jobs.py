"""The jobs of every host on screen, owned by the app (``app.jobs``): listing, launch, stop, resume.

A host's list is polled every few seconds while a view follows the host, with the next poll armed
only when the last one finished, so a slow host never piles up requests; when the host stops
answering, the last list stays with its age and the polls back off. Every change is announced
with ``changed`` (the host's name). The jobs travel over the host's shared link
(``transfer.link_pool``), the one its telemetry and transfers use.

The actions raise ``GputuiError`` in the host's words; what to ask first and what to say after is
the screen's business.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.signal import Signal
from textual.timer import Timer

from transfer.errors import GputuiError
from transfer.hosts import HostProfile
from transfer.jobs.state import JobMeta, JobStatus
from transfer.link import Link
from transfer.link_pool import LinkPool
from tui.text import terminal_safe

if TYPE_CHECKING:
    from transfer.jobs.host import HostJobs

POLL_S = 2.0
RETRY_S = (5.0, 10.0, 30.0)


def open_host_jobs(link: Link) -> HostJobs:
    """The jobs of the host at the other end of ``link`` (tests swap this out)."""
    # The job modules load when a host's jobs are first listed, not at start-up.
    from transfer.jobs.host import HostJobs

    return HostJobs(link)


@dataclass
class HostJobList:
    """What is known of one host's jobs: the last list (newest first), its age, the last error."""

    host: HostProfile
    jobs: list[JobStatus] = field(default_factory=list)
    source: HostJobs | None = None
    error: str | None = None
    listed_at: float | None = None
    failures: int = 0
    followers: int = 0
    link: Link | None = None
    timer: Timer | None = None


class JobsService:
    """The job lists of the followed hosts, and the job actions."""

    def __init__(self, app: App[Any], links: LinkPool) -> None:
        self.app = app
        self.links = links
        self.changed: Signal[str] = Signal(app, "jobs-changed")
        self._lists: dict[str, HostJobList] = {}

    # -- what the views read -----------------------------------------------------------------
    def listing(self, name: str) -> HostJobList | None:
        return self._lists.get(name)

    def source(self, name: str) -> HostJobs | None:
        """The host's jobs once connected (the Logs and Metrics panes read through it)."""
        listing = self._lists.get(name)
        return None if listing is None else listing.source

    # -- following ---------------------------------------------------------------------------
    def follow(self, host: HostProfile) -> HostJobList:
        """Poll ``host`` while at least one view follows it; the first list comes at once."""
        listing = self._lists.get(host.name)
        if listing is None:
            listing = self._lists[host.name] = HostJobList(host)
        listing.followers += 1
        if listing.followers == 1:
            # The first listing is part of opening the screen; later ones stream in the background.
            self.app.run_worker(self._poll(listing), group=f"jobs:{host.name}", exit_on_error=False)
        return listing

    def unfollow(self, name: str) -> None:
        """A view stopped following: the last one stops the polls and lets the link go."""
        listing = self._lists.get(name)
        if listing is None:
            return
        listing.followers -= 1
        if listing.followers > 0:
            return
        del self._lists[name]
        if listing.timer is not None:
            listing.timer.stop()
        link, listing.link = listing.link, None
        if link is not None:
            self.app.run_worker(self.links.release(link), exit_on_error=False)

    def refresh(self, name: str) -> None:
        """List the host's jobs now (the next regular poll stays as armed)."""
        listing = self._lists.get(name)
        if listing is not None:
            self.app.run_worker(self._poll(listing, rearm=False), group=f"live:jobs:{name}:now")

    async def _poll(self, listing: HostJobList, *, rearm: bool = True) -> None:
        try:
            source = await self._connected(listing)
            jobs = await source.list()
        except GputuiError as exc:
            listing.failures += 1
            listing.error = terminal_safe(str(exc))
            delay = RETRY_S[min(listing.failures - 1, len(RETRY_S) - 1)]
        else:
            listing.failures = 0
            listing.error = None
            listing.listed_at = time.monotonic()
            listing.jobs = sorted(jobs, key=lambda j: (j.meta.created_at, j.id), reverse=True)
            delay = POLL_S
        if self._lists.get(listing.host.name) is not listing:  # nobody follows it any more
            link, listing.link = listing.link, None
            if link is not None:
                await self.links.release(link)
            return
        self.changed.publish(listing.host.name)
        if rearm:
            listing.timer = self.app.set_timer(delay, lambda: self._next_poll(listing))

    def _next_poll(self, listing: HostJobList) -> None:
        if self._lists.get(listing.host.name) is listing:
            name = listing.host.name
            self.app.run_worker(self._poll(listing), group=f"live:jobs:{name}", exit_on_error=False)

    async def _connected(self, listing: HostJobList) -> HostJobs:
        if listing.source is None:
            if listing.link is None:
                listing.link = self.links.acquire(listing.host)
            source = open_host_jobs(listing.link)
            await source.link.connect()
            listing.source = source
        return listing.source

    def _source(self, name: str) -> HostJobs:
        source = self.source(name)
        if source is None:
            raise GputuiError("Not connected yet; try again in a moment.")
        return source

    # -- actions (``list_now`` afterwards shows their effect) ------------------------------------
    async def launch(self, name: str, command: str, job_name: str | None) -> JobMeta:
        from transfer.jobs.launch import launch_job  # loaded with the first launch

        return await launch_job(self._source(name), command, name=job_name)

    async def stop(self, name: str, job_id: str, grace_s: float) -> None:
        from transfer.jobs.stop import request_stop  # loaded with the first stop

        await request_stop(self._source(name), job_id, grace_s=grace_s)

    async def resume(self, name: str, job_id: str) -> JobMeta:
        from transfer.jobs.resume import resume_job  # loaded with the first resume

        return await resume_job(self._source(name), job_id)

    async def output_folder(self, name: str, job: JobStatus) -> str | None:
        """The job's output folder on the host (what ``P`` offers to pull), if it names one."""
        from transfer.jobs.outputs import job_output_folder  # loaded with the first pull offer

        source = self.source(name)
        return None if source is None else await job_output_folder(source, job)

    async def list_now(self, name: str) -> None:
        """List the host's jobs again and wait for the answer."""
        listing = self._lists.get(name)
        if listing is not None:
            await self._poll(listing, rearm=False)
