"""The laptop's idle flag: the watchdog's rule, applied to the samples the app receives.

The rule lives once, in ``trainers.idle.IdleTracker``: a host is idle while no gputui job runs on
it and every GPU stays under the threshold (default 5 %), and it is flagged once that has lasted
the window (default 15 min). Here the tracker only advises (never stops anything), and jobs that
could not be read count as running, as unreadable GPUs do: a false "idle" is the costly mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trainers.protocol.gpu_sample import HostSample
from trainers.protocol.idle_rule import WOULD_STOP, Decision, IdleRule, IdleTracker

UNKNOWN_JOBS = "(jobs not read yet)"


@dataclass(frozen=True)
class IdleState:
    """What the flag says now: idle for ``idle_for`` seconds, flagged once over the window."""

    flagged: bool
    idle_for: float
    reason: str


class IdleFlag:
    """Feed it samples in time order; ask it whether the host is flagged idle."""

    def __init__(self, rule: IdleRule | None = None) -> None:
        self.rule = rule or IdleRule()
        self._tracker = IdleTracker(self.rule, dry_run=True)
        self._last: Decision | None = None

    def observe(
        self, time: float, sample: HostSample, running_jobs: Sequence[str] | None
    ) -> IdleState:
        """One sample; ``running_jobs`` None means the jobs are not known."""
        jobs = [UNKNOWN_JOBS] if running_jobs is None else list(running_jobs)
        utils = [gpu.utilization_pct for gpu in sample.gpus]
        self._last = self._tracker.observe(time, utils, jobs)
        return self.state

    @property
    def state(self) -> IdleState:
        if self._last is None:
            return IdleState(False, 0.0, "no sample yet")
        return IdleState(
            flagged=self._last.decision == WOULD_STOP,
            idle_for=self._last.idle_for,
            reason=self._last.reason,
        )
