"""The one redraw rate rule: at once when the last drawing is old enough, else once when it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tui.throttle import Throttle


class FakeTimer:
    def __init__(self, delay: float, callback: Callable[[], None]) -> None:
        self.delay, self.callback, self.stopped = delay, callback, False

    def stop(self) -> None:
        self.stopped = True


def test_a_burst_draws_once_now_and_once_when_the_interval_is_up() -> None:
    clock = [100.0]
    timers: list[FakeTimer] = []
    drawn: list[float] = []

    def set_timer(delay: float, callback: Callable[[], None]) -> Any:
        timers.append(FakeTimer(delay, callback))
        return timers[-1]

    throttle = Throttle(set_timer, 0.1, lambda: drawn.append(clock[0]), clock=lambda: clock[0])
    for _ in range(1000):
        throttle.request()
    assert drawn == [100.0] and len(timers) == 1 and timers[0].delay == 0.1
    clock[0] = 100.1
    timers[0].callback()
    assert drawn == [100.0, 100.1] and not throttle.pending
    throttle.request(now=True)  # a transfer that ended is shown at once
    assert len(drawn) == 3
