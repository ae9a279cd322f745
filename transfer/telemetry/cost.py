"""What the time on a host costs, from its hourly rate.

A host bills from the moment it is up: its cost so far is the rate times the time since gputui
first saw it up (``transfer.telemetry.uptime`` remembers that across restarts of the app).

A job's cost is **the rate recorded at launch × runtime** (:func:`job_rate`, :func:`job_cost`):
editing a host's rate later changes what its future jobs cost, not what the ones already launched
did, and every pane and the CLI show the same number. A job launched before rates were recorded
falls back to the host's rate. A job that reports an ETA will cost that rate times the ETA more.
A rate of 0 means "not known" (no rate in the profile), so every cost is then None.
"""

from __future__ import annotations

from dataclasses import dataclass

SECONDS_PER_HOUR = 3600.0


def cost_usd(rate_usd_per_hour: float, seconds: float | None) -> float | None:
    """``rate × seconds``; None when the rate or the time is not known."""
    if not rate_usd_per_hour or seconds is None:
        return None
    return rate_usd_per_hour * max(0.0, seconds) / SECONDS_PER_HOUR


def host_cost_so_far(
    rate_usd_per_hour: float, first_seen_up: float | None, now: float
) -> float | None:
    """The host's cost since it was first seen up."""
    if first_seen_up is None:
        return None
    return cost_usd(rate_usd_per_hour, now - first_seen_up)


def idle_cost(rate_usd_per_hour: float, idle_for_s: float | None) -> float | None:
    """Money spent while the host sat idle."""
    return cost_usd(rate_usd_per_hour, idle_for_s)


@dataclass(frozen=True)
class JobCost:
    """A job's cost so far and, when it reports an ETA, what finishing it will add."""

    so_far: float | None
    to_finish: float | None

    @property
    def projected_total(self) -> float | None:
        if self.so_far is None or self.to_finish is None:
            return None
        return self.so_far + self.to_finish


def job_rate(rate_at_launch: float, host_rate: float) -> float:
    """The hourly rate a job is billed at: the one recorded when it was launched, else the
    host's (a job launched before rates were recorded)."""
    return rate_at_launch or host_rate


def job_cost(
    rate_usd_per_hour: float, runtime_s: float | None, eta_s: float | None = None
) -> JobCost:
    """Cost of a job that has run ``runtime_s`` and reports ``eta_s`` seconds left, at the
    job's rate (:func:`job_rate`)."""
    return JobCost(
        so_far=cost_usd(rate_usd_per_hour, runtime_s),
        to_finish=cost_usd(rate_usd_per_hour, eta_s),
    )
