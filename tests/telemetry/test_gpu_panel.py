"""The GPU panel driven with Pilot: recorded samples, N/A, stale values with their age, the
process table, and a snapshot of the whole panel."""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.text import Text
from telemetry_samples import NOW, PanelApp, recorded_samples
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from trainers.protocol.gpu_sample import HostSample, HostStats
from transfer.hosts import HostProfile
from transfer.jobs.state import JobMeta, JobState, JobStatus
from transfer.telemetry.events import (
    TelemetryError,
    TelemetryJobs,
    TelemetrySample,
    TelemetryStale,
)
from tui.widgets.gpu_panel import GpuCard, GpuPanel

SIZE = (100, 32)
HOST = HostProfile(name="a100-box", hostname="203.0.113.7", rate_usd_per_hour=1.89)


def plain(widget: Static) -> str:
    rendered: Any = widget.render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


def cards(app: PanelApp) -> list[str]:
    texts = []
    for card in app.query(GpuCard):
        rendered = card.render()
        texts.append(rendered.plain if isinstance(rendered, Text) else str(rendered))
    return texts


def status(app: PanelApp) -> str:
    return plain(app.query_one("#gpu-status", Static))


def running_job(started_at: float) -> JobStatus:
    meta = JobMeta(
        id="20261122-0700-train", name="train", command="python -m trainers.lora",
        workdir="/workspace", host=HOST.name, created_at=started_at, rate_usd_per_hour=1.89,
    )
    return JobStatus(meta=meta, state=JobState.RUNNING, started_at=started_at, observed_at=NOW)


async def feed_sample(app: PanelApp, pilot: Pilot[None], sample: HostSample, at: float) -> None:
    app.clock[0] = at
    app.telemetry.feed(TelemetrySample(HOST.name, dataclasses.replace(sample, timestamp=at), at))
    await pilot.pause()


async def test_recorded_a100_sample_fills_cards_host_line_and_processes() -> None:
    app = PanelApp(HOST, [NOW])
    async with app.run_test(size=SIZE) as pilot:
        assert status(app) == "Connecting to a100-box…"
        await feed_sample(app, pilot, recorded_samples("a100x2", "a100-box")[0], NOW)

        gpu0, gpu1 = cards(app)
        title, util, memory = gpu0.splitlines()
        assert title.startswith("GPU 0 A100-SXM4-80GB")
        assert title.endswith("62°C  312/400 W  fan N/A  1410 MHz")
        assert util.startswith("UTL █") and "100%" in util
        assert memory.startswith("MEM ") and "39.5/80.0G" in memory
        assert "0%" in gpu1.splitlines()[1] and "0.0/80.0G" in gpu1.splitlines()[2]
        assert status(app) == "nvidia-smi · driver 535.104.05 · a100-box · updated 0s ago"
        host_line = plain(app.query_one("#gpu-host", Static))
        assert host_line.startswith("CPU ") and "×2" in host_line and "RAM " in host_line
        table = app.query_one("#gpu-processes", DataTable)
        assert [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)] == [
            ["0", "2412871", "N/A", "40391 MiB", "/opt/conda/bin/python"]
        ]


async def test_unreadable_fields_read_na() -> None:
    app = PanelApp(HOST, [NOW])
    async with app.run_test(size=SIZE) as pilot:
        await feed_sample(app, pilot, recorded_samples("v100x4_driver418", "v100-box")[0], NOW)
        texts = cards(app)
        assert len(texts) == 4
        # GPU 3 answered [Unknown Error] for utilization, temperature, power draw and clock.
        title, util, _ = texts[3].splitlines()
        assert title.endswith("N/A  N/A/300 W  fan N/A  N/A")
        assert util.rstrip().endswith("N/A") or " N/A " in util
        assert "fan N/A" in texts[0]  # [Not Supported] on driver 418


async def test_stale_values_stay_with_their_age_until_the_next_sample() -> None:
    app = PanelApp(HOST, [NOW])
    sample = recorded_samples("a100x2", "a100-box")[0]
    async with app.run_test(size=SIZE) as pilot:
        await feed_sample(app, pilot, sample, NOW)
        before = cards(app)

        app.clock[0] = NOW + 135
        app.telemetry.feed(TelemetryStale(HOST.name, 135.0, "connection lost; reconnecting"))
        await pilot.pause()
        panel = app.query_one(GpuPanel)
        assert status(app) == (
            "⚠ stale: last sample 2m15s ago — connection lost; reconnecting"
        )
        assert panel.has_class("-stale")
        assert [text.splitlines()[0] for text in cards(app)] == [
            text.splitlines()[0] for text in before
        ]

        await feed_sample(app, pilot, sample, NOW + 140)
        assert not panel.has_class("-stale")
        assert status(app).endswith("updated 0s ago")


async def test_no_gpu_and_errors_say_why() -> None:
    app = PanelApp(HOST, [NOW])
    async with app.run_test(size=SIZE) as pilot:
        app.telemetry.feed(TelemetryError(HOST.name, "cannot reach a100-box: refused"))
        await pilot.pause()
        assert status(app) == "… cannot reach a100-box: refused"

        bare = HostSample(
            timestamp=NOW, gpu_status="no NVIDIA driver (nvidia-smi not found)",
            source="nvidia-smi", host=HostStats(cpu_pct=3.0, cpu_count=8),
        )
        await feed_sample(app, pilot, bare, NOW)
        assert cards(app) == []
        notes = [plain(note) for note in app.query(".gpu-none").results(Static)]
        assert notes == ["No GPUs: no NVIDIA driver (nvidia-smi not found)"]


async def test_cost_line_counts_from_first_seen_up_and_names_running_jobs() -> None:
    app = PanelApp(HOST, [NOW])
    sample = recorded_samples("a100x2", "a100-box")[0]
    async with app.run_test(size=SIZE) as pilot:
        app.telemetry.feed(TelemetryJobs(HOST.name, (running_job(NOW - 3600),), NOW - 7200))
        for ago in range(7200, -1, -600):
            await feed_sample(app, pilot, sample, NOW - ago)
        line = plain(app.query_one("#gpu-cost", Static))
        # 2 h at $1.89/h since first seen; the job ran 1 h of it.
        assert line == "$1.89/h · $3.78 so far (up 2h00m) · running: train $1.89"


async def test_the_panel_shows_the_last_minutes_as_sparklines() -> None:
    app = PanelApp(HOST, [NOW])
    sample = recorded_samples("a100x2", "a100-box")[0]
    async with app.run_test(size=SIZE) as pilot:
        for step in range(300, -1, -10):  # 5 minutes, GPU 1 ramping up
            ramp = dataclasses.replace(sample.gpus[1], utilization_pct=100 - step // 3)
            moved = dataclasses.replace(sample, gpus=[sample.gpus[0], ramp])
            app.telemetry.feed(
                TelemetrySample(HOST.name, moved, NOW - step)
            )
        app.clock[0] = NOW
        app.telemetry.feed(TelemetrySample(HOST.name, sample, NOW))
        await pilot.pause()
        util_line = cards(app)[1].splitlines()[1]
        spark = util_line.split()[-1]
        assert spark[0] in "▁▂" and spark[-2] == "█"


def test_snapshot_of_the_panel(snap_compare: Any) -> None:
    app = PanelApp(HOST, [NOW])
    samples = recorded_samples("a100x2", "a100-box")

    async def play(pilot: Pilot[None]) -> None:
        for step in range(240, -1, -1):
            sample = samples[step % len(samples)]
            app.telemetry.feed(TelemetrySample(HOST.name, sample, NOW - step))
        app.telemetry.feed(TelemetryJobs(HOST.name, (), NOW))
        app.clock[0] = NOW + 42
        app.telemetry.feed(TelemetryStale(HOST.name, 42.0, "connection lost; reconnecting"))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=play)


async def test_host_sent_names_are_shown_escaped_never_as_markup() -> None:
    """A hostile host's GPU name, hostname and process command: escapes shown, markup literal."""
    from hostile import HOSTILE_TEXT, shows_raw_control

    sample = recorded_samples("a100x2", "a100-box")[0]
    evil = HOSTILE_TEXT["osc52"] + HOSTILE_TEXT["c1_csi"] + HOSTILE_TEXT["markup"]
    gpu = dataclasses.replace(
        sample.gpus[0],
        name="NVIDIA A100" + evil,
        processes=[dataclasses.replace(sample.gpus[0].processes[0], command="py" + evil)],
    )
    hostile = dataclasses.replace(sample, gpus=[gpu], hostname="box" + evil)
    app = PanelApp(HOST, [NOW])
    async with app.run_test(size=(160, 32)) as pilot:
        await feed_sample(app, pilot, hostile, NOW)
        table = app.query_one("#gpu-processes", DataTable)
        command = table.get_row_at(0)[4]
        assert isinstance(command, Text)
        shown = [cards(app)[0].splitlines()[0], status(app), command.plain]
        for text in shown:
            assert not shows_raw_control(text), text
            assert "[link=https://evil.example]click[/link]" in text, text
            assert "\\x1b]52;c;cHduZWQ=\\x07" in text and "\\x9b31m" in text, text
