"""What a telemetry stream reports: plain event objects that the CLI prints and the app draws.

Times on these events are the laptop's clock (``time.time()``), so that ages and costs do not
depend on how well a rented host keeps time; the sample inside keeps the host's own timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainers.protocol.gpu_sample import HostSample
from transfer.jobs.state import JobStatus


@dataclass(frozen=True)
class TelemetrySample:
    """A good sample, received at ``received_at``."""

    host: str
    sample: HostSample
    received_at: float


@dataclass(frozen=True)
class TelemetryStale:
    """No fresh sample: ``last`` (possibly None) is ``age`` seconds old, for ``reason``.

    Repeated while the host stays quiet, with a growing age, so that a view can show it.
    """

    host: str
    age: float
    reason: str
    last: HostSample | None = None


@dataclass(frozen=True)
class TelemetryError:
    """Something went wrong; ``fatal`` means the stream gave up (a host key to check, a key
    refused) and only the person can fix it."""

    host: str
    message: str
    fatal: bool = False


@dataclass(frozen=True)
class TelemetryJobs:
    """The gputui jobs on the host; ``jobs`` is None when they could not be read."""

    host: str
    jobs: tuple[JobStatus, ...] | None
    received_at: float
    message: str = ""

    @property
    def running(self) -> tuple[JobStatus, ...] | None:
        if self.jobs is None:
            return None
        return tuple(job for job in self.jobs if job.state.is_active)


TelemetryEvent = TelemetrySample | TelemetryStale | TelemetryError | TelemetryJobs
