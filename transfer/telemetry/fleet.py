"""What the app knows about each host's telemetry: the events of its stream, folded into state.

``HostTelemetry.apply(event)`` is the one place that turns events into what the views read: the
last good sample and when it came, why it is stale, the history for sparklines, the idle flag,
the running jobs and the costs. It holds no UI and no I/O, so tests drive it with plain events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainers.protocol.gpu_sample import HostSample
from trainers.protocol.idle_rule import IdleRule
from transfer.jobs.state import JobStatus
from transfer.telemetry.cost import JobCost, host_cost_so_far, idle_cost, job_cost, job_rate
from transfer.telemetry.events import (
    TelemetryError,
    TelemetryEvent,
    TelemetryJobs,
    TelemetrySample,
    TelemetryStale,
)
from transfer.telemetry.history import GpuHistory
from transfer.telemetry.idle import IdleFlag, IdleState
from transfer.telemetry.uptime import UptimeLedger


@dataclass
class HostTelemetry:
    """The telemetry of one host as the views show it."""

    name: str
    rate_usd_per_hour: float = 0.0
    ledger: UptimeLedger = field(default_factory=UptimeLedger)
    history: GpuHistory = field(default_factory=GpuHistory)
    idle_rule: IdleRule = field(default_factory=IdleRule)
    last: HostSample | None = None
    received_at: float | None = None
    stale_reason: str | None = None
    error: str | None = None
    fatal: bool = False
    jobs: tuple[JobStatus, ...] | None = None
    jobs_message: str = ""
    idle: IdleState = field(init=False)
    _idle: IdleFlag = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._idle = IdleFlag(self.idle_rule)
        self.idle = self._idle.state

    # -- events ----------------------------------------------------------------------------
    def apply(self, event: TelemetryEvent) -> None:
        if isinstance(event, TelemetrySample):
            self.last, self.received_at = event.sample, event.received_at
            self.stale_reason, self.error, self.fatal = None, None, False
            self.history.add(event.received_at, event.sample)
            running = None if self.jobs is None else [j.id for j in self.running_jobs or ()]
            self.idle = self._idle.observe(event.received_at, event.sample, running)
            self.ledger.seen(self.name, event.received_at)
        elif isinstance(event, TelemetryStale):
            self.stale_reason = event.reason
        elif isinstance(event, TelemetryError):
            self.error, self.fatal = event.message, event.fatal
        elif isinstance(event, TelemetryJobs):
            self.jobs, self.jobs_message = event.jobs, event.message

    # -- what the views read -----------------------------------------------------------------
    @property
    def is_stale(self) -> bool:
        return self.stale_reason is not None

    def age(self, now: float) -> float | None:
        """Seconds since the last good sample arrived; None before the first."""
        return None if self.received_at is None else max(0.0, now - self.received_at)

    @property
    def running_jobs(self) -> tuple[JobStatus, ...] | None:
        if self.jobs is None:
            return None
        return tuple(job for job in self.jobs if job.state.is_active)

    @property
    def first_seen_up(self) -> float | None:
        return self.ledger.first_seen(self.name)

    def cost_so_far(self, now: float) -> float | None:
        """Rate × time since the host was first seen up (up to the last sample when stale)."""
        end = self.received_at if self.is_stale and self.received_at is not None else now
        return host_cost_so_far(self.rate_usd_per_hour, self.first_seen_up, end)

    @property
    def idle_flagged(self) -> bool:
        """The idle flag as the views show it: a host that neither bills nor has a GPU (a
        laptop) is not worth flagging, though the rule holds for it too."""
        has_gpus = self.last is not None and bool(self.last.gpus)
        return self.idle.flagged and bool(self.rate_usd_per_hour or has_gpus)

    def idle_cost(self) -> float | None:
        """Money spent during the current idle stretch, once it is flagged."""
        if not self.idle_flagged:
            return None
        return idle_cost(self.rate_usd_per_hour, self.idle.idle_for)

    def job_cost(self, job: JobStatus, eta_s: float | None = None) -> JobCost:
        rate = job_rate(job.meta.rate_usd_per_hour, self.rate_usd_per_hour)
        return job_cost(rate, job.runtime_s, eta_s)

    def mean_utilization(self) -> float | None:
        """Mean utilization over the GPUs that report it; None without any."""
        if self.last is None:
            return None
        values = [g.utilization_pct for g in self.last.gpus if g.utilization_pct is not None]
        return sum(values) / len(values) if values else None
