"""The Transfers pane of the host screen, driven with Pilot: push with ``p``, pull with ``P``
and a typed path, cancel with ``c`` and resume with ``r``; transfers outlive the screen, and
redraws stay at about ten a second. Plus a snapshot of the pane mid-transfer, clock frozen."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input, Static
from waiting import pilot_until

from transfer.hosts import local_host
from transfer.jobs.host import HostJobs
from transfer.jobs.state import JobStatus
from transfer.local_link import LocalLink
from transfer.sync.engine import SyncRequest
from transfer.sync.events import FileProgress, PhaseChanged, Progress, SyncResult
from transfer.telemetry.events import TelemetryEvent
from tui.app import GputuiApp
from tui.cli.headless import settle
from tui.screens.host_screen import HostScreen
from tui.screens.pull_prompt import PullPromptScreen
from tui.services import jobs as jobs_service
from tui.services import telemetry
from tui.services.transfers import TransferManager, TransferRecord
from tui.widgets.transfers_pane import TransfersPane

SIZE = (120, 40)
SNAP_SIZE = (110, 16)
SnapCompare = Callable[..., bool]


class _QuietStream:
    async def events(self) -> AsyncGenerator[TelemetryEvent, None]:
        await asyncio.Event().wait()
        yield  # type: ignore[misc]  # pragma: no cover - never reached


class _NoJobs(HostJobs):
    async def list(self) -> list[JobStatus]:
        return []


@pytest.fixture(autouse=True)
def quiet_panes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The other panes of the host screen read nothing: only transfers move."""
    monkeypatch.setattr(
        telemetry, "open_stream", lambda host, interval, clock, link: _QuietStream()
    )
    monkeypatch.setattr(jobs_service, "open_host_jobs", lambda link: _NoJobs(LocalLink(link.host)))


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """This folder (a project) and the local host's workdir."""
    project, workdir = tmp_path / "project", tmp_path / "workdir"
    project.mkdir()
    (project / "train.py").write_text("print('train')\n")
    (project / "data").mkdir()
    (project / "data" / "rows.jsonl").write_bytes(os.urandom(5000))
    monkeypatch.chdir(project)
    monkeypatch.setenv("GPUTUI_LOCAL_WORKDIR", str(workdir))
    return project, workdir


def pane_text(app: GputuiApp) -> str:
    """What the pane shows, as plain text."""
    body = app.screen.query_one(TransfersPane).query_one("#transfers-body", Static)
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(body.content)
    return console.export_text()


async def test_p_pushes_this_folder_to_the_workdir(places: tuple[Path, Path]) -> None:
    project, workdir = places
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, HostScreen)
        await pilot.press("p")
        await settle(app, pilot)
        (record,) = app.transfers.for_host("local")
        assert record.state == "done" and record.result is not None
        assert record.result.files_sent == 2
        assert (workdir / "data" / "rows.jsonl").read_bytes() == (
            project / "data" / "rows.jsonl"
        ).read_bytes()
        text = pane_text(app)
        assert "↑ push" in text and "done" in text and "2 files" in text


async def test_shift_p_asks_for_the_remote_path_and_pulls(
    places: tuple[Path, Path],
) -> None:
    project, workdir = places
    (workdir / "runs" / "ckpt").mkdir(parents=True)
    (workdir / "runs" / "ckpt" / "adapter.bin").write_bytes(b"weights")
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("P")
        await pilot.pause()
        assert isinstance(app.screen, PullPromptScreen)
        await pilot.press(*"runs/ckpt", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, HostScreen)
        assert (project / "ckpt" / "adapter.bin").read_bytes() == b"weights"
        assert "↓ pull" in pane_text(app)


async def test_pull_prompt_is_prefilled_with_a_default(places: tuple[Path, Path]) -> None:
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        answers: list[str | None] = []
        app.push_screen(PullPromptScreen(local_host(), "jobs/run-7/out"), answers.append)
        await pilot.pause()
        assert app.screen.query_one("#pull-path", Input).value == "jobs/run-7/out"
        await pilot.press("enter")
        await pilot.pause()
        assert answers == ["jobs/run-7/out"]

        app.push_screen(PullPromptScreen(local_host(), "jobs/run-7"), answers.append)
        await pilot.pause()
        await pilot.press(*"/out", "enter")  # typing goes on after the default
        await pilot.pause()
        assert answers[-1] == "jobs/run-7/out"

        app.push_screen(PullPromptScreen(local_host()), answers.append)
        await pilot.pause()
        assert app.screen.query_one("#pull-path", Input).value == ""
        await pilot.press("escape")
        await pilot.pause()
        assert answers[-1] is None
        assert isinstance(app.screen, HostScreen)


async def test_transfers_outlive_the_screen_and_cancel_and_resume(
    places: tuple[Path, Path],
) -> None:
    project, workdir = places
    big = project / "big.bin"
    big.write_bytes(os.urandom(4 * 1024 * 1024))
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        manager = app.transfers
        request = SyncRequest("push", str(project), str(workdir), bwlimit=2 * 1024 * 1024,
                              small_file_limit=64 * 1024)
        record = manager.start(local_host(), request)

        def moved() -> int:
            return record.progress.bytes_done if record.progress else 0

        await pilot.press("escape")  # leave the host screen: the transfer goes on
        await pilot_until(pilot, lambda: moved() > 512 * 1024, timeout=10)
        assert record.state == "running"
        await pilot.press("enter")  # back to the host screen (local is highlighted)
        await pilot.pause()
        assert isinstance(app.screen, HostScreen)
        pane = app.screen.query_one(TransfersPane)
        pane.focus()
        await pilot.pause()
        assert "sending" in pane_text(app) and "big.bin" in pane_text(app)
        await pilot.press("c")
        await pilot.pause()
        assert record.state == "cancelled"
        assert not (workdir / "big.bin").exists()
        assert "stopped; r resumes it" in pane_text(app)

        await pilot.press("r")
        await settle(app, pilot)
        assert record.state == "done" and record.result is not None
        assert record.result.resumed_bytes > 0
        assert (workdir / "big.bin").read_bytes() == big.read_bytes()


async def test_redraws_are_throttled(places: tuple[Path, Path]) -> None:
    project, workdir = places
    for index in range(3000):
        (project / "data" / f"f{index:04d}").write_bytes(b"x" * 100)
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        manager = app.transfers
        published: list[str] = []
        manager.changed.subscribe(app.screen, published.append)
        started = asyncio.get_running_loop().time()
        record = manager.start(local_host(), SyncRequest("push", str(project), str(workdir)))
        await settle(app, pilot)
        elapsed = asyncio.get_running_loop().time() - started
        assert record.state == "done"
        assert len(published) <= elapsed / 0.1 + 4
        assert len(list(workdir.rglob("f*"))) == 3000

        # A burst of a thousand events: one redraw now, one more when the interval is up.
        await pilot.pause(0.3)
        published.clear()
        burst = TransferRecord(99, local_host(), record.request, started=0.0)
        manager.records.append(burst)
        for index in range(1000):
            manager.on_event(burst, Progress("sending", index, 1000, index, 1000, 0.0, None))
        await pilot.pause(0.3)
        assert published == ["local", "local"]
        text = pane_text(app)
        assert "999/1000 files" in text


def frozen_manager(app: GputuiApp) -> TransferManager:
    """Three transfers in three states, fed through the manager with the clock stopped."""
    manager = app.transfers = TransferManager(app, clock=lambda: 1000.0)
    host = local_host()
    running = TransferRecord(
        1, host, SyncRequest("push", "/data/llama-finetune", "~/gputui/"), started=990.0
    )
    manager.records.append(running)
    manager.on_event(running, PhaseChanged("sending"))
    manager.on_event(
        running,
        Progress(
            phase="sending",
            files_done=812,
            files_total=2000,
            bytes_done=420_000_000,
            bytes_total=1_000_000_000,
            rate=35_100_000,
            eta_s=16.5,
            current=FileProgress("data/shard-0007.parquet", 300_000_000, 700_000_000),
            active=2,
        ),
    )
    done = TransferRecord(
        2, host, SyncRequest("pull", "/data/ckpt", "runs/ckpt"), started=900.0, state="done",
        result=SyncResult("pull", "local", "local:/w/runs/ckpt", "/data/ckpt", False,
                          files_sent=12, bytes_sent=480_000_000, files_skipped=3,
                          resumed_bytes=120_000_000, elapsed_s=9.4),
    )
    failed = TransferRecord(
        3, host, SyncRequest("push", "/data/big", "big/"), started=950.0, state="failed",
        error="no space left on local:/w/big/model.bin",
    )
    manager.records[:0] = [done, failed]
    return manager


def test_snapshot_mid_transfer(
    snap_compare: SnapCompare, places: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUTUI_LOCAL_WORKDIR", "~/gputui")

    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot.app, pilot)
        app = pilot.app
        assert isinstance(app, GputuiApp)
        frozen_manager(app)
        pane = app.screen.query_one(TransfersPane)
        pane.focus()
        app.screen.maximize(pane)  # the picture is of this pane, whatever the others show
        pane.redraw()
        await pilot.pause()

    assert snap_compare(
        GputuiApp(start_host="local"), terminal_size=SNAP_SIZE, run_before=run_before
    )

