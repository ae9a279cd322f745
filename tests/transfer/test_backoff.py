"""The one waiting policy of the reconnect and retry loops."""

from __future__ import annotations

import pytest

from transfer.backoff import Backoff


def test_delays_grow_by_the_factor_up_to_the_cap() -> None:
    policy = Backoff(initial_s=0.5, factor=2.0, cap_s=3.0)
    run = policy.start()
    assert [run.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    run.reset()
    assert run.next_delay() == 0.5


def test_the_deadline_counts_from_the_first_failure_and_bounds_the_last_wait() -> None:
    now = [100.0]
    run = Backoff(initial_s=4.0, cap_s=4.0, deadline_s=10.0).start(lambda: now[0])
    assert run.next_delay() == 4.0
    now[0] += 8.0
    assert run.next_delay() == pytest.approx(2.0)  # only what is left of the budget
    now[0] += 2.0
    assert run.next_delay() is None


def test_a_run_that_starts_failing_counts_from_its_start() -> None:
    now = [0.0]
    run = Backoff(initial_s=1.0, deadline_s=5.0).start(lambda: now[0], failing=True)
    now[0] = 6.0
    assert run.next_delay() is None


def test_jitter_spreads_the_delay_within_its_fraction() -> None:
    run = Backoff(initial_s=1.0, factor=1.0, cap_s=1.0, jitter=0.2).start()
    delays = [run.next_delay() for _ in range(50)]
    assert all(d is not None and 0.8 <= d <= 1.2 for d in delays)
    assert len(set(delays)) > 1


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(factor=0.5)
