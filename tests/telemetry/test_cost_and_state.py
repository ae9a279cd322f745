"""Cost arithmetic, the uptime ledger, the bounded history, and the host state that the views read
(idle flag over a scripted utilization series, stale cost, mean utilization)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainers.protocol.gpu_sample import GpuSample, HostSample
from trainers.protocol.idle_rule import IdleRule
from transfer.jobs.state import JobMeta, JobState, JobStatus
from transfer.telemetry import uptime
from transfer.telemetry.cost import cost_usd, host_cost_so_far, idle_cost, job_cost
from transfer.telemetry.events import TelemetryJobs, TelemetrySample, TelemetryStale
from transfer.telemetry.fleet import HostTelemetry
from transfer.telemetry.history import GpuHistory
from transfer.telemetry.uptime import UptimeLedger

T0 = 1_795_330_000.0


def sample(*utils: int | None, at: float = T0) -> HostSample:
    gpus = [
        GpuSample(index=i, uuid=f"GPU-{i}", utilization_pct=u, memory_used_mib=1024,
                  memory_total_mib=4096)
        for i, u in enumerate(utils)
    ]
    return HostSample(timestamp=at, gpus=gpus)


def job(state: JobState, started_at: float, observed_at: float, rate: float = 0.0) -> JobStatus:
    meta = JobMeta(
        id="j1", name="train", command="python train.py", workdir="~/w", host="box",
        created_at=started_at, rate_usd_per_hour=rate,
    )
    return JobStatus(meta=meta, state=state, started_at=started_at, observed_at=observed_at)


# -- cost arithmetic ---------------------------------------------------------------------------


def test_cost_is_rate_times_hours() -> None:
    assert cost_usd(1.89, 3600) == pytest.approx(1.89)
    assert cost_usd(2.40, 90 * 60) == pytest.approx(3.60)
    assert cost_usd(0.0, 3600) is None  # no rate set: unknown, not free
    assert cost_usd(1.0, None) is None
    assert cost_usd(1.0, -5) == 0.0  # a clock that went back costs nothing


def test_host_cost_runs_from_first_seen_up() -> None:
    assert host_cost_so_far(1.29, T0, T0 + 2 * 3600) == pytest.approx(2.58)
    assert host_cost_so_far(1.29, None, T0) is None


def test_job_cost_so_far_and_projected_to_finish() -> None:
    cost = job_cost(3.00, runtime_s=40 * 60, eta_s=20 * 60)
    assert cost.so_far == pytest.approx(2.00)
    assert cost.to_finish == pytest.approx(1.00)
    assert cost.projected_total == pytest.approx(3.00)
    no_eta = job_cost(3.00, runtime_s=600)
    assert no_eta.to_finish is None and no_eta.projected_total is None


def test_idle_cost() -> None:
    assert idle_cost(1.80, 20 * 60) == pytest.approx(0.60)


# -- uptime ledger -----------------------------------------------------------------------------


def test_ledger_keeps_the_up_period_until_a_gap(tmp_path: Path) -> None:
    ledger = UptimeLedger(gap_s=3600)
    assert ledger.seen("box", T0) == T0
    assert ledger.seen("box", T0 + 1800) == T0
    assert ledger.seen("box", T0 + 3000) == T0
    # Not seen for more than the gap: released and rented again, a new period.
    assert ledger.seen("box", T0 + 3000 + 3601) == T0 + 6601

    path = tmp_path / "uptime.json"
    uptime.save(ledger, path)
    assert not ledger.dirty
    assert json.loads(path.read_text())["hosts"]["box"]["first_seen"] == T0 + 6601
    assert uptime.load(path).first_seen("box") == T0 + 6601


def test_ledger_read_late_still_extends_the_period_it_continues(tmp_path: Path) -> None:
    on_disk = UptimeLedger()
    on_disk.seen("box", T0)
    on_disk.seen("box", T0 + 600)
    path = tmp_path / "uptime.json"
    uptime.save(on_disk, path)

    fresh = UptimeLedger()
    fresh.seen("box", T0 + 900)  # the app restarted and a sample came before the file was read
    fresh.merge(uptime.load(path))
    assert fresh.first_seen("box") == T0


def test_a_broken_ledger_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "uptime.json"
    path.write_text("{not json")
    assert uptime.load(path).periods == {}
    path.write_text('{"hosts": {"a": {"first_seen": "x"}, "b": {"first_seen": 1, "last_seen": 2}}}')
    assert list(uptime.load(path).periods) == ["b"]


# -- history -----------------------------------------------------------------------------------


def test_history_is_bounded_to_the_window_and_resampled() -> None:
    history = GpuHistory(window_s=60, max_points=1000)
    for second in range(0, 180):
        history.add(T0 + second, sample(second % 100))
    points = history.points(0)
    assert points[0].time == T0 + 119 and points[-1].time == T0 + 179  # last minute only
    buckets = history.resampled(0, "utilization_pct", 6, T0 + 179)
    assert len(buckets) == 6 and all(b is not None for b in buckets)
    assert buckets[-1] == pytest.approx(sum(range(69, 80)) / 11)  # now falls in the last one
    assert history.resampled(0, "memory_pct", 2, T0 + 179) == [25.0, 25.0]


def test_history_starts_over_when_another_gpu_takes_the_index() -> None:
    history = GpuHistory()
    history.add(T0, sample(50))
    swapped = HostSample(timestamp=T0, gpus=[GpuSample(index=0, uuid="GPU-new")])
    history.add(T0 + 1, swapped)
    assert [p.time for p in history.points(0)] == [T0 + 1]


# -- host state --------------------------------------------------------------------------------


def test_idle_flag_follows_the_watchdog_rule_over_a_scripted_series() -> None:
    state = HostTelemetry("box", rate_usd_per_hour=2.0, idle_rule=IdleRule(5.0, 600.0))
    state.apply(TelemetryJobs("box", (), T0))
    series = [(0, 80), (60, 3), (120, 4), (300, 2), (660, 1), (720, 1), (780, 40), (840, 0)]
    flagged = []
    for offset, util in series:
        state.apply(TelemetrySample("box", sample(util, 0), T0 + offset))
        flagged.append((offset, state.idle.flagged, state.idle.idle_for))
    # Idle from t=60 (first sample under 5 %), flagged once 600 s have passed (t=660),
    # cleared by the busy sample at t=780, and the wait starts over at t=840.
    assert flagged == [
        (0, False, 0.0), (60, False, 0.0), (120, False, 60.0), (300, False, 240.0),
        (660, True, 600.0), (720, True, 660.0), (780, False, 0.0), (840, False, 0.0),
    ]


def test_no_idle_flag_while_a_job_runs_or_jobs_are_unknown() -> None:
    state = HostTelemetry("box", rate_usd_per_hour=2.0, idle_rule=IdleRule(5.0, 60.0))
    for offset in range(0, 301, 30):  # jobs never read
        state.apply(TelemetrySample("box", sample(0), T0 + offset))
    assert not state.idle.flagged and "jobs not read" in state.idle.reason

    running = job(JobState.RUNNING, T0, T0 + 300)
    state.apply(TelemetryJobs("box", (running,), T0 + 300))
    for offset in range(330, 601, 30):
        state.apply(TelemetrySample("box", sample(0), T0 + offset))
    assert not state.idle.flagged and state.idle.reason == "job running: j1"

    done = job(JobState.SUCCEEDED, T0, T0 + 600)
    state.apply(TelemetryJobs("box", (done,), T0 + 600))
    for offset in range(630, 721, 30):
        state.apply(TelemetrySample("box", sample(0), T0 + offset))
    assert state.idle.flagged and state.idle.idle_for == 90.0
    assert state.idle_cost() == pytest.approx(2.0 * 90 / 3600)


def test_cost_so_far_stops_at_the_last_sample_while_stale() -> None:
    state = HostTelemetry("box", rate_usd_per_hour=3.6)
    state.apply(TelemetrySample("box", sample(90), T0))
    state.apply(TelemetrySample("box", sample(90), T0 + 1000))
    assert state.cost_so_far(T0 + 1000) == pytest.approx(1.0)
    state.apply(TelemetryStale("box", 500.0, "connection lost; reconnecting"))
    assert state.is_stale and state.age(T0 + 1500) == 500.0
    assert state.cost_so_far(T0 + 1500) == pytest.approx(1.0)  # nothing seen since
    state.apply(TelemetrySample("box", sample(90), T0 + 1500))
    assert not state.is_stale and state.cost_so_far(T0 + 1500) == pytest.approx(1.5)


def test_job_cost_uses_the_rate_recorded_with_the_job() -> None:
    state = HostTelemetry("box", rate_usd_per_hour=1.0)
    assert state.job_cost(job(JobState.RUNNING, T0, T0 + 1800, rate=4.0)).so_far == pytest.approx(
        2.0
    )
    assert state.job_cost(job(JobState.RUNNING, T0, T0 + 1800)).so_far == pytest.approx(0.5)


def test_mean_utilization_skips_unreadable_gpus() -> None:
    state = HostTelemetry("box")
    assert state.mean_utilization() is None
    state.apply(TelemetrySample("box", sample(100, None, 50), T0))
    assert state.mean_utilization() == 75.0


def test_a_host_without_gpu_or_rate_is_not_flagged_idle() -> None:
    laptop = HostTelemetry("local", idle_rule=IdleRule(5.0, 60.0))
    laptop.apply(TelemetryJobs("local", (), T0))
    for offset in range(0, 121, 30):
        laptop.apply(TelemetrySample("local", sample(at=T0), T0 + offset))
    assert laptop.idle.flagged  # the watchdog's rule: no GPU counts as 0 %
    assert not laptop.idle_flagged  # nothing bills and nothing sits unused: no flag on screen
    laptop.rate_usd_per_hour = 0.5
    assert laptop.idle_flagged and laptop.idle_cost() == pytest.approx(0.5 * 120 / 3600)
