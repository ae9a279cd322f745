"""The one waiting policy of every reconnect and retry loop in transfer/.

A :class:`Backoff` says how long to wait between attempts (``initial_s``, times ``factor`` after
each failure, never more than ``cap_s``, spread by ``jitter`` so that many clients do not
retry in step) and for how long to keep trying at all (``deadline_s``). A loop that retries asks
its :class:`BackoffRun` for the next delay; ``None`` means the budget is spent. Only the
outermost loop of an operation retries: inner layers make one attempt and let it decide.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Backoff:
    """How to wait between attempts, and for how long in all."""

    initial_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 8.0
    jitter: float = 0.0
    deadline_s: float | None = None

    def __post_init__(self) -> None:
        if self.initial_s < 0 or self.cap_s < 0 or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"not a usable backoff: {self}")

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1 for the first), unjittered."""
        return min(self.initial_s * self.factor ** max(failures - 1, 0), self.cap_s)

    def tuned(self, **changes: float | None) -> Backoff:
        """The same policy with some fields changed (tests shorten it)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def start(
        self, clock: Callable[[], float] = time.monotonic, *, failing: bool = False
    ) -> BackoffRun:
        """A run of attempts under this policy; its deadline counts from the first failure,
        or from now when the run starts because something already failed (``failing``)."""
        return BackoffRun(self, clock, failing_since=clock() if failing else None)


@dataclass
class BackoffRun:
    """The attempts of one loop: failures so far, and when the first of them was."""

    policy: Backoff
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    failing_since: float | None = None
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def reset(self) -> None:
        """An attempt succeeded: the next failure starts over from ``initial_s``."""
        self.failures, self.failing_since = 0, None

    def remaining(self) -> float | None:
        """Seconds left of the deadline, or None when there is no deadline."""
        if self.policy.deadline_s is None:
            return None
        since = self.failing_since if self.failing_since is not None else self.clock()
        return self.policy.deadline_s - (self.clock() - since)

    def next_delay(self) -> float | None:
        """Record a failure; the wait before the next attempt, or None when the time is up."""
        if self.failing_since is None:
            self.failing_since = self.clock()
        self.failures += 1
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            return None
        delay = self.policy.delay(self.failures)
        if self.policy.jitter:
            delay *= 1 + self.policy.jitter * (2 * self._random.random() - 1)
        return delay if remaining is None else min(delay, remaining)

    async def wait(self) -> bool:
        """Record a failure and sleep before the next attempt; False when the time is up."""
        delay = self.next_delay()
        if delay is None:
            return False
        await asyncio.sleep(delay)
        return True
