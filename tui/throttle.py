"""Redraws at a bounded rate: one home for the rule every live view follows.

A view told of a change draws at once when its last drawing is old enough, else once when it is;
changes in between fold into that one drawing. A flood of events (a 10,000-file push, a trainer
printing thousands of lines a second) costs a few frames a second, not one per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.timer import Timer

SetTimer = Callable[[float, Callable[[], None]], Timer]


class Throttle:
    """Call ``action`` at most once per ``interval`` seconds, the last request never lost."""

    def __init__(
        self,
        set_timer: SetTimer,
        interval: float,
        action: Callable[[], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._set_timer = set_timer
        self.interval = interval
        self._action = action
        self._clock = clock
        self._last = float("-inf")
        self._timer: Timer | None = None

    @property
    def pending(self) -> bool:
        """A drawing is due when the interval is up."""
        return self._timer is not None

    def request(self, *, now: bool = False) -> None:
        """Draw now (``now``, or the last drawing is old enough), else once the interval is up."""
        wait = self.interval - (self._clock() - self._last)
        if now or wait <= 0:
            self.run()
        elif self._timer is None:
            self._timer = self._set_timer(wait, self.run)

    def run(self) -> None:
        """Draw now; a drawing that was due is part of this one."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._last = self._clock()
        self._action()
