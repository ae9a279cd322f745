"""The idle rule both sides apply: no gputui job and every GPU under a threshold for a window.

The watchdog on the host (``python -m trainers.idle``) and the app's idle flags
(``transfer/telemetry/idle.py``) feed it the same observations and get the same decisions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

DEFAULT_THRESHOLD_PCT = 5.0
DEFAULT_WINDOW_S = 15 * 60.0

KEEP, STOP, WOULD_STOP = "keep", "stop", "would-stop"


@dataclass(frozen=True)
class IdleRule:
    threshold_pct: float = DEFAULT_THRESHOLD_PCT
    window_s: float = DEFAULT_WINDOW_S


@dataclass
class Decision:
    """What the watchdog concluded from one sample."""

    time: float
    gpu_utils: list[int | None]
    running_jobs: list[str]
    idle_for: float
    decision: str
    reason: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


@dataclass
class IdleTracker:
    """The rule as a pure state machine: feed it observations in time order, get decisions."""

    rule: IdleRule = field(default_factory=IdleRule)
    dry_run: bool = False
    idle_since: float | None = None

    def observe(
        self, timestamp: float, gpu_utils: Sequence[int | None], running_jobs: Sequence[str]
    ) -> Decision:
        utils, jobs = list(gpu_utils), list(running_jobs)

        def decide(decision: str, reason: str, idle_for: float = 0.0) -> Decision:
            return Decision(timestamp, utils, jobs, round(idle_for, 3), decision, reason)

        busy = self._busy_reason(utils, jobs)
        if busy is not None:
            self.idle_since = None
            return decide(KEEP, busy)
        if self.idle_since is None or timestamp < self.idle_since:
            # The first idle sample, or the clock went back: start the wait here.
            self.idle_since = timestamp
        idle_for = timestamp - self.idle_since
        what = (
            "no GPU (counted as 0%)"
            if not utils
            else f"every GPU under {self.rule.threshold_pct:g}%"
        )
        if idle_for >= self.rule.window_s:
            reason = f"no job and {what} for {idle_for:.0f}s (window {self.rule.window_s:.0f}s)"
            return decide(WOULD_STOP if self.dry_run else STOP, reason, idle_for)
        reason = f"no job and {what} for {idle_for:.0f}s of {self.rule.window_s:.0f}s"
        return decide(KEEP, reason, idle_for)

    def _busy_reason(self, utils: list[int | None], jobs: list[str]) -> str | None:
        if jobs:
            return f"job running: {', '.join(jobs)}"
        for index, util in enumerate(utils):
            if util is None:
                return f"GPU {index} utilization unknown (counted as busy)"
            if util >= self.rule.threshold_pct:
                return f"GPU {index} busy: {util}% >= {self.rule.threshold_pct:g}%"
        return None
