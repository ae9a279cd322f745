"""Following a job's progress lines from the host: a real job writing them through the trainer's
writer, a real sshd whose connections are killed mid-run, and the curve kept from them."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest
from progress_lines import (
    RATE_USD_PER_HOUR,
    preempted_and_resumed,
    progress,
    step_line,
    training_run,
    writer_job,
)
from sshd import SshServer

from trainers.protocol.progress import ProgressLine, read_lines
from transfer.connect import open_link
from transfer.hosts import HostProfile
from transfer.jobs.events import LogEnded, LogReconnecting, LogResumed
from transfer.jobs.host import HostJobs
from transfer.jobs.launch import launch_job
from transfer.jobs.state import JobState
from transfer.telemetry.metrics import (
    MetricsEvent,
    MetricsLines,
    RunMetrics,
    follow_metrics,
    parse_lines,
)

pytestmark = pytest.mark.usefixtures("job_env")


async def collect(events: object) -> tuple[list[ProgressLine], list[MetricsEvent]]:
    lines: list[ProgressLine] = []
    seen: list[MetricsEvent] = []
    async for event in events:  # type: ignore[attr-defined]
        seen.append(event)
        if isinstance(event, MetricsLines):
            lines.extend(event.lines)
    return lines, seen


# -- the curve ------------------------------------------------------------------------------------
def test_a_resume_drops_the_repeated_steps_and_keeps_the_latest_facts() -> None:
    metrics = RunMetrics()
    run = preempted_and_resumed(total=100, checkpoint=20, preempted_at=30)
    metrics.feed(run[:32])  # up to the preemption
    assert metrics.preempted and metrics.step == 30
    metrics.feed(run[32:])
    assert [p.step for p in metrics.steps] == list(range(1, 33))
    assert all(p.resume_idx == 1 for p in metrics.steps[20:])
    assert all(p.resume_idx == 0 for p in metrics.steps[:20])
    assert (metrics.step, metrics.total_steps, metrics.resume_idx) == (32, 100, 1)
    assert metrics.tok_s == 1235.0 and metrics.eta_s == 68 * 3.0
    assert metrics.fraction == pytest.approx(0.32)
    cost = metrics.cost(RATE_USD_PER_HOUR)
    assert cost.to_finish == pytest.approx(2.0 * 68 * 3 / 3600)
    assert cost.so_far == pytest.approx(2.0 * 32 * 3 / 3600)
    assert metrics.cost(0.0).to_finish is None  # no rate, no price


def test_a_finished_run_has_nothing_left_to_pay_for() -> None:
    metrics = RunMetrics()
    metrics.feed(training_run(10))
    assert metrics.finished and metrics.eta_s == 0.0 and metrics.step == 10
    assert metrics.cost(RATE_USD_PER_HOUR).to_finish == 0.0
    assert metrics.last_eval is not None and metrics.last_eval.eval_loss == 1.5
    assert metrics.loss == pytest.approx(4.0 / 2)


def test_the_curve_stays_bounded_and_keeps_its_ends() -> None:
    metrics = RunMetrics(max_points=100)
    for start in range(0, 1000, 50):  # a long run, read in batches
        metrics.feed([step_line(s, 1000) for s in range(start + 1, start + 51)])
    steps = [p.step for p in metrics.steps]
    assert len(steps) <= 100 and steps == sorted(steps)
    assert steps[0] == 1 and steps[-1] == 1000
    curve = metrics.curve(20)
    assert len(curve.loss) <= 21 and curve.loss_steps[-1] == 1000
    assert curve.loss == sorted(curve.loss, reverse=True)  # the loss falls


def test_missing_and_nan_values_are_left_out_of_the_plot() -> None:
    metrics = RunMetrics()
    metrics.feed([
        step_line(1, 10),
        progress("step", 2, 10, loss=math.nan, lr=None),
        step_line(3, 10),
    ])
    curve = metrics.curve(100)
    assert curve.loss_steps == [1, 3] and curve.lr_steps == [1, 3]


def test_lines_that_are_not_progress_lines_are_counted_not_kept() -> None:
    good = step_line(1, 10).to_json()
    lines, skipped = parse_lines([good, "", "{torn", '{"event": "nope"}', '{"event": "step"}'])
    assert [line.step for line in lines] == [1] and skipped == 3


# -- following on a host ---------------------------------------------------------------------------
async def test_follow_survives_killed_connections_without_gaps_or_repeats(
    ssh_host: HostProfile, sshd_server: SshServer, tmp_path: Path
) -> None:
    run = training_run(60)
    command, _ = writer_job(tmp_path / "writer", run, pause_s=0.03)
    got: list[ProgressLine] = []
    kills: list[int] = []

    def kill_while_reading() -> None:
        for after in (10, 35):
            deadline = time.monotonic() + 30
            while len(got) < after and time.monotonic() < deadline:
                time.sleep(0.01)
            sshd_server.kill_connections()
            kills.append(len(got))

    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, command, name="trainer")
        killer = threading.Thread(target=kill_while_reading, daemon=True)
        killer.start()
        events: list[MetricsEvent] = []
        async for event in follow_metrics(jobs, meta.id, poll_s=0.1):
            events.append(event)
            if isinstance(event, MetricsLines):
                got.extend(event.lines)
        killer.join()
        status = await jobs.status(meta.id)
    assert len(kills) == 2 and all(k < len(run) for k in kills)
    assert got == run  # every line once, in order
    assert sum(isinstance(e, LogReconnecting) for e in events) >= 2
    assert any(isinstance(e, LogResumed) for e in events)
    final = events[-1]
    assert isinstance(final, LogEnded) and final.status is not None
    assert status.state is JobState.SUCCEEDED
    # What the host holds is what the trainer's own reader sees.
    assert read_lines(tmp_path / "writer" / "run" / "metrics.jsonl") == run


async def test_an_app_that_starts_again_reads_the_whole_run_from_a_new_link(
    ssh_host: HostProfile, tmp_path: Path
) -> None:
    run = preempted_and_resumed(total=50, checkpoint=10, preempted_at=16)
    command, _ = writer_job(tmp_path / "writer", run, pause_s=0.0)
    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, command, name="trainer")
        first, _ = await collect(follow_metrics(jobs, meta.id, poll_s=0.05))
    async with open_link(ssh_host) as link:  # a fresh start knows nothing but the job id
        again, events = await collect(follow_metrics(HostJobs(link), meta.id, follow=False))
    assert first == again == run
    metrics = RunMetrics()
    for event in events:
        if isinstance(event, MetricsLines):
            metrics.add(event)
    assert [p.step for p in metrics.steps] == list(range(1, 19))
    assert metrics.resume_idx == 1 and metrics.offset == len(
        "".join(line.to_json() + "\n" for line in run).encode()
    )


async def test_a_job_that_writes_no_metrics_yields_none_and_ends(ssh_host: HostProfile) -> None:
    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, "echo not a trainer; sleep 0.5", name="plain")
        lines, events = await collect(follow_metrics(jobs, meta.id, poll_s=0.05))
    assert lines == []
    assert not any(isinstance(e, MetricsLines) for e in events)
    final = events[-1]
    assert isinstance(final, LogEnded) and final.status is not None
    assert final.status.state is JobState.SUCCEEDED
