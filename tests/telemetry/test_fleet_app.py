"""The fleet columns of the host list and the GPU panel inside the real app: fed by hand for the
idle and cost arithmetic, and end to end over a real sshd with the recorded nvidia-smi."""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from pathlib import Path

from rich.text import Text
from telemetry_samples import recorded_samples
from textual.widgets import DataTable
from waiting import pilot_until

from trainers.protocol.gpu_sample import HostSample
from transfer.hosts import HostProfile, HostStore
from transfer.telemetry.events import TelemetryJobs, TelemetrySample, TelemetryStale
from tui.app import GputuiApp
from tui.cli.headless import settle
from tui.host_status import HostStatus
from tui.screens.host_screen import HostScreen
from tui.widgets.gpu_panel import GpuCard

SIZE = (180, 30)
RENTED = HostProfile(name="a100-box", hostname="203.0.113.7", rate_usd_per_hour=1.29)


def cell(app: GputuiApp, host: str, column: str) -> str:
    table: DataTable[Text | str] = app.screen.query_one("#hosts", DataTable)
    value = table.get_cell(host, column)
    return value.plain if isinstance(value, Text) else str(value)


def card_text(card: GpuCard) -> str:
    rendered = card.render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


def with_utils(sample: HostSample, *utils: int) -> HostSample:
    gpus = [
        dataclasses.replace(gpu, utilization_pct=util)
        for gpu, util in zip(sample.gpus, utils, strict=True)
    ]
    return dataclasses.replace(sample, gpus=gpus)


until = partial(pilot_until, timeout=15.0)


async def test_fleet_columns_flag_an_idle_host_with_the_money_spent(isolated_home: Path) -> None:
    HostStore().upsert(RENTED)
    app = GputuiApp()
    sample = recorded_samples("a100x2", "a100-box")[0]
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert [cell(app, "a100-box", c) for c in ("util", "idle", "cost")] == ["—"] * 3
        # Only the local host streams by itself; a rented host waits for a test or its screen.
        assert app.telemetry.is_watching("local")
        assert not app.telemetry.is_watching("a100-box")

        app.telemetry.track(RENTED)
        start = time.time() - 1200
        app.telemetry.feed(TelemetryJobs("a100-box", (), start))
        for second in range(0, 1201, 30):  # 20 minutes, both GPUs at 0 %
            idle_sample = with_utils(sample, 0, 0)
            app.telemetry.feed(TelemetrySample("a100-box", idle_sample, start + second))
        # The list is redrawn once a second for the whole fleet.
        await until(pilot, lambda: cell(app, "a100-box", "util") != "—", timeout=3)
        assert cell(app, "a100-box", "gpus") == "2× A100-SXM4-80GB"
        assert cell(app, "a100-box", "util") == "0%"
        # Idle since the first sample: 1200 s at $1.29/h is $0.43, flagged past the 15 min window.
        assert cell(app, "a100-box", "idle") == "IDLE 20m00s $0.43"
        assert cell(app, "a100-box", "cost") == "$0.43"

        busy = with_utils(sample, 100, 0)
        app.telemetry.feed(TelemetrySample("a100-box", busy, time.time()))
        await until(pilot, lambda: cell(app, "a100-box", "util") == "50%", timeout=3)
        assert cell(app, "a100-box", "idle") == "—"

        app.telemetry.feed(TelemetryStale("a100-box", 3.0, "connection lost; reconnecting"))
        await until(pilot, lambda: cell(app, "a100-box", "util").startswith("50% ⚠"), timeout=3)


async def test_a_host_that_tested_fine_streams_into_the_list_and_its_panel(
    smi_host: HostProfile,
) -> None:
    HostStore().upsert(smi_host)
    app = GputuiApp()
    # Wide enough for the three-column dashboard, where a GPU card shows the whole name.
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(app, pilot)
        app.set_status(smi_host.name, HostStatus(state="ok", latency_ms=1.0, gpus=()))
        await until(pilot, lambda: cell(app, smi_host.name, "util") != "—")
        assert cell(app, smi_host.name, "gpus") == "2× A100-SXM4-80GB"
        assert cell(app, smi_host.name, "util") in {"50%", "49%"}  # GPU 0 at 100 or 98, GPU 1 idle
        assert cell(app, smi_host.name, "cost").startswith("$0.0")

        app.open_host(smi_host.name)
        await until(pilot, lambda: isinstance(app.screen, HostScreen))
        await until(pilot, lambda: len(app.screen.query(GpuCard)) == 2)
        first = card_text(app.screen.query(GpuCard).first())
        assert first.startswith("GPU 0 A100-SXM4-80GB")
