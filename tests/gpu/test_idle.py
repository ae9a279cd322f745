"""The idle watchdog's rule over scripted utilization series, and its CLI end to end."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from trainers.idle import Watchdog, other_running_jobs, parse_duration
from trainers.protocol import jobdir
from trainers.protocol.gpu_sample import GpuSample, HostSample
from trainers.protocol.idle_rule import IdleRule, IdleTracker

REPO = Path(__file__).resolve().parents[2]


def decisions(
    tracker: IdleTracker,
    series: list[tuple[float, list[int | None]]],
    jobs: list[str] | None = None,
) -> list[tuple[float, str, float]]:
    return [
        (d.time, d.decision, d.idle_for)
        for d in (tracker.observe(t, utils, jobs or []) for t, utils in series)
    ]


def test_stops_exactly_when_the_window_is_met() -> None:
    tracker = IdleTracker(IdleRule(threshold_pct=5, window_s=60))
    series: list[tuple[float, list[int | None]]] = [(t, [0, 4]) for t in range(0, 80, 10)]

    assert decisions(tracker, series) == [
        (0, "keep", 0),
        (10, "keep", 10),
        (20, "keep", 20),
        (30, "keep", 30),
        (40, "keep", 40),
        (50, "keep", 50),
        (60, "stop", 60),
        (70, "stop", 70),
    ]


def test_a_busy_sample_starts_the_wait_over() -> None:
    tracker = IdleTracker(IdleRule(threshold_pct=5, window_s=60))
    series: list[tuple[float, list[int | None]]] = [
        (0, [0, 0]),
        (30, [0, 0]),
        (50, [0, 5]),  # at the threshold is busy
        (60, [1, 0]),
        (110, [0, 0]),
        (120, [0, 4]),
    ]
    got = decisions(tracker, series)
    assert [d for _, d, _ in got] == ["keep", "keep", "keep", "keep", "keep", "stop"]
    assert got[2][2] == 0 and got[4][2] == 50 and got[5][2] == 60


def test_never_stops_while_a_job_runs() -> None:
    tracker = IdleTracker(IdleRule(threshold_pct=5, window_s=60))
    series: list[tuple[float, list[int | None]]] = [(t, [0]) for t in range(0, 600, 30)]

    got = [tracker.observe(t, u, ["train-1"]) for t, u in series]

    assert {d.decision for d in got} == {"keep"}
    assert got[-1].reason == "job running: train-1"
    assert got[-1].idle_for == 0
    # The wait starts when the job has gone, not before.
    assert tracker.observe(600, [0], []).idle_for == 0
    assert tracker.observe(660, [0], []).decision == "stop"


def test_unknown_utilization_is_busy_and_no_gpu_is_idle() -> None:
    tracker = IdleTracker(IdleRule(window_s=10))
    unknown = [tracker.observe(t, [0, None], []) for t in (0, 20)]
    assert [d.decision for d in unknown] == ["keep", "keep"]
    assert unknown[-1].reason == "GPU 1 utilization unknown (counted as busy)"

    no_gpu = IdleTracker(IdleRule(window_s=10), dry_run=True)
    got = [no_gpu.observe(t, [], []) for t in (0, 5, 10)]
    assert [d.decision for d in got] == ["keep", "keep", "would-stop"]
    assert got[-1].reason == "no job and no GPU (counted as 0%) for 10s (window 10s)"


def test_a_gpu_that_disappears_counts_as_unreadable() -> None:
    log = io.StringIO()
    stops: list[str] = []

    def stop(command: str) -> tuple[int, str]:
        stops.append(command)
        return 0, ""

    watchdog = Watchdog(IdleTracker(IdleRule(window_s=10)), lambda: [], "halt", log, stop)
    assert not watchdog.step(0, [0, 0])
    assert not watchdog.step(20, [0])  # GPU 1 stopped answering: not idle
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert lines[-1]["gpu_utils"] == [0, None]
    assert lines[-1]["decision"] == "keep"
    assert stops == []


def test_durations() -> None:
    assert [parse_duration(t) for t in ("900", "90s", "15m", "1.5h")] == [900, 90, 900, 5400]


# End to end: python -m trainers.idle --replay -------------------------------------------------


def write_series(path: Path, series: Sequence[tuple[float, Sequence[int | None]]]) -> Path:
    lines = [
        HostSample(
            timestamp=t,
            gpus=[GpuSample(index=i, utilization_pct=u) for i, u in enumerate(utils)],
        ).to_json()
        for t, utils in series
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_idle(*args: str, job_id: str | None = None) -> tuple[int, list[dict[str, Any]], str]:
    env = {k: v for k, v in os.environ.items() if k != "GPUTUI_JOB_ID"}
    if job_id is not None:
        env["GPUTUI_JOB_ID"] = job_id
    done = subprocess.run(
        [sys.executable, "-m", "trainers.idle", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    records = [json.loads(line) for line in done.stdout.splitlines()]
    return done.returncode, records, done.stderr


# Every minute for 30 minutes: busy until 10:00, idle, a spike at 14:00, then idle to the end.
START = 1_800_000_000.0
SERIES: list[tuple[float, list[int | None]]] = [
    (START + 60 * m, [90, 85] if m < 10 else [0, 14] if m == 14 else [0, 3]) for m in range(31)
]
FIRST_STOP = START + 60 * (15 + 15)  # idle again from minute 15, for the 15-minute window


def test_replay_dry_run_logs_would_stop_exactly_at_the_window(tmp_path: Path) -> None:
    replay = write_series(tmp_path / "series.jsonl", SERIES)

    code, records, stderr = run_idle(
        "--replay", str(replay), "--dry-run", "--jobs-root", str(tmp_path / "jobs")
    )

    assert code == 0, stderr
    start, *log = records
    assert start["event"] == "start" and start["window_s"] == 900 and start["threshold_pct"] == 5
    assert len(log) == len(SERIES)
    assert [r["time"] for r in log if r["decision"] != "keep"] == [FIRST_STOP]
    stop = log[-1]
    assert stop == {
        "time": FIRST_STOP,
        "gpu_utils": [0, 3],
        "running_jobs": [],
        "idle_for": 900.0,
        "decision": "would-stop",
        "reason": "no job and every GPU under 5% for 900s (window 900s)",
    }
    spike = log[14]
    assert spike["decision"] == "keep" and spike["reason"] == "GPU 1 busy: 14% >= 5%"
    assert log[13]["idle_for"] == 180.0  # idle since minute 10, reset by the spike


def test_replay_runs_the_stop_command_and_stops_there(tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    replay = write_series(tmp_path / "series.jsonl", [*SERIES, *SERIES[-1:]])

    code, records, stderr = run_idle(
        "--replay",
        str(replay),
        "--jobs-root",
        str(tmp_path / "jobs"),
        "--stop-command",
        f"echo stopping the host > {marker}",
    )

    assert code == 0, stderr
    *_, stop, command = records
    assert stop["decision"] == "stop" and stop["time"] == FIRST_STOP
    assert command["event"] == "stop-command" and command["exit_code"] == 0
    assert marker.read_text() == "stopping the host\n"


def test_a_failing_stop_command_is_logged_and_tried_again(tmp_path: Path) -> None:
    series = [(START + 60 * m, [0]) for m in range(4)]
    replay = write_series(tmp_path / "series.jsonl", series)

    code, records, _ = run_idle(
        "--replay",
        str(replay),
        "--window",
        "1m",
        "--jobs-root",
        str(tmp_path / "jobs"),
        "--stop-command",
        "echo no credentials >&2; exit 3",
    )

    assert code == 0
    commands = [r for r in records if r.get("event") == "stop-command"]
    assert [c["exit_code"] for c in commands] == [3, 3, 3]
    assert commands[0]["output"] == "no credentials"


@pytest.fixture
def live_job(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A real job folder whose pid record names a live process, as the job wrapper writes it."""
    root = tmp_path / "jobs"
    job = root / "train-1"
    job.mkdir(parents=True)
    (job / jobdir.META).write_text('{"command": "sleep 120"}\n')
    process = subprocess.Popen(["sleep", "120"], start_new_session=True)
    ticks = jobdir.process_start_ticks(process.pid)
    (job / jobdir.PID).write_text(f"{process.pid} {process.pid} {jobdir.boot_id()} {ticks}\n")
    try:
        yield root, process
    finally:
        process.kill()
        process.wait()


def test_never_stops_while_a_job_runs_then_stops_after_it_ends(
    tmp_path: Path, live_job: tuple[Path, subprocess.Popen[bytes]]
) -> None:
    root, process = live_job
    marker = tmp_path / "stopped"
    replay = write_series(tmp_path / "series.jsonl", [(START + 60 * m, [0]) for m in range(40)])
    args = ["--replay", str(replay), "--jobs-root", str(root), "--stop-command", f"touch {marker}"]

    code, records, stderr = run_idle(*args)

    assert code == 0, stderr
    log = records[1:]
    assert len(log) == 40
    assert all(r["decision"] == "keep" for r in log)
    assert all(r["running_jobs"] == ["train-1"] for r in log)
    assert log[-1]["reason"] == "job running: train-1"
    assert not marker.exists()

    # Started by the job wrapper as job train-1 itself, the watchdog does not wait for itself.
    code, records, stderr = run_idle(*args, "--dry-run", job_id="train-1")
    assert code == 0, stderr
    assert records[-1]["decision"] == "would-stop" and records[-1]["running_jobs"] == []

    process.kill()
    process.wait()
    code, records, stderr = run_idle(*args)

    assert code == 0, stderr
    assert records[-2]["decision"] == "stop" and records[-2]["time"] == START + 60 * 15
    assert marker.exists()


def test_the_watchdogs_own_job_does_not_keep_the_host_up(tmp_path: Path) -> None:
    # The watchdog runs inside a job whose recorded process is its parent (here: this test).
    root = tmp_path / "jobs"
    job = root / "idle-watchdog"
    job.mkdir(parents=True)
    me = os.getpid()
    ticks = jobdir.process_start_ticks(me)
    (job / jobdir.PID).write_text(f"{me} {os.getpgrp()} {jobdir.boot_id()} {ticks}\n")
    assert jobdir.running_jobs(root) == ["idle-watchdog"]
    assert other_running_jobs(root) == []  # this process is that job

    replay = write_series(tmp_path / "series.jsonl", [(START + 60 * m, [0]) for m in range(16)])
    code, records, stderr = run_idle("--replay", str(replay), "--jobs-root", str(root), "--dry-run")

    assert code == 0, stderr
    assert records[-1]["decision"] == "would-stop"
    assert records[-1]["running_jobs"] == []


def test_cli_refuses_to_run_without_a_way_to_stop(tmp_path: Path) -> None:
    code, records, stderr = run_idle("--jobs-root", str(tmp_path))
    assert code == 2 and records == []
    assert stderr.strip() == "trainers.idle: give --stop-command, or --dry-run to only log"


def test_a_bad_replay_line_names_file_and_line(tmp_path: Path) -> None:
    replay = write_series(tmp_path / "series.jsonl", [(START, [0])])
    with replay.open("a") as f:
        f.write("GPU 0: 97%\n")

    code, records, stderr = run_idle("--replay", str(replay), "--dry-run")

    assert code == 1
    assert len(records) == 2  # start, then the good line
    assert stderr.startswith(f"trainers.idle: {replay}:2: not a JSON telemetry line")
    assert "Traceback" not in stderr


def test_live_on_this_machine_stops_after_the_window(tmp_path: Path) -> None:
    """No replay: the watchdog reads this machine's GPUs and jobs. Without a GPU (as here) the
    host counts as 0 %; a threshold above 100 % makes any GPU idle, wherever this runs."""
    marker = tmp_path / "stopped"

    code, records, stderr = run_idle(
        "--interval",
        "0.1",
        "--window",
        "0.5",
        "--threshold",
        "101",
        "--jobs-root",
        str(tmp_path / "jobs"),
        "--stop-command",
        f"touch {marker}",
    )

    assert code == 0, stderr
    decisions = [r for r in records if "decision" in r]
    assert [r["decision"] for r in decisions[:-1]] == ["keep"] * (len(decisions) - 1)
    assert decisions[-1]["decision"] == "stop"
    assert decisions[-1]["idle_for"] >= 0.5
    assert decisions[-1]["time"] - decisions[0]["time"] == pytest.approx(
        decisions[-1]["idle_for"], abs=0.01
    )
    assert records[-1]["event"] == "stop-command" and records[-1]["exit_code"] == 0
    assert marker.exists()
