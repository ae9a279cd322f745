"""The Metrics pane on the host dashboard, following real jobs on a real sshd host.

A job writes the trainer's progress lines through the trainer's own writer and holds half-way;
the pane must plot them and show step/total, tokens/s, the ETA, the cost to finish at the host's
rate and the resume index, ride out killed connections with no step lost or repeated, and say
so plainly when a job writes no metrics.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from functools import partial
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
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Input, Static
from textual_plotext import PlotextPlot
from waiting import pilot_until

from transfer.connect import open_link
from transfer.hosts import HostProfile, HostStore
from transfer.jobs.host import JOBS_ROOT_ENV, HostJobs
from transfer.jobs.launch import TMUX_SOCKET_ENV, launch_job
from transfer.jobs.state import JobMeta
from tui.app import GputuiApp
from tui.screens.host_screen import HostScreen
from tui.services import jobs as jobs_service
from tui.widgets import metrics_pane
from tui.widgets.jobs_pane import JobsPane
from tui.widgets.metrics_pane import MetricsPane

SIZE = (160, 50)


@pytest.fixture
def ssh_host(
    sshd_server: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HostProfile]:
    """``gpu1`` at $2/h over the real sshd, with a jobs folder and tmux server of its own."""
    monkeypatch.setenv(JOBS_ROOT_ENV, str(tmp_path / "host-jobs"))
    socket_dir = Path(tempfile.mkdtemp(prefix="gtm"))  # short: socket paths have a limit
    monkeypatch.setenv(TMUX_SOCKET_ENV, str(socket_dir / "s"))
    monkeypatch.setattr(jobs_service, "open_host_jobs", HostJobs)
    workdir = tmp_path / "work"
    workdir.mkdir()
    sshd_server.trust()
    profile = sshd_server.profile(
        "gpu1", workdir=str(workdir), rate_usd_per_hour=RATE_USD_PER_HOUR
    )
    HostStore().upsert(profile)
    yield profile
    subprocess.run(["tmux", "-S", str(socket_dir / "s"), "kill-server"], capture_output=True,
                   check=False)
    shutil.rmtree(socket_dir, ignore_errors=True)


async def launch(host: HostProfile, command: str, name: str) -> JobMeta:
    async with open_link(host) as link:
        return await launch_job(HostJobs(link), command, name=name)


until = partial(pilot_until, timeout=20.0)


def drawn(widget: Widget) -> str:
    """The text the widget draws now, line by line."""
    width, height = widget.size
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, width, height)))


def pane(app: GputuiApp) -> MetricsPane:
    return app.screen.query_one(MetricsPane)


def following(app: GputuiApp) -> bool:
    """The dashboard is up and its Metrics pane follows a job."""
    panes = app.screen.query(MetricsPane)
    return bool(panes) and panes.first().job is not None


def stats(app: GputuiApp) -> str:
    if not following(app):
        return ""
    return drawn(pane(app).query_one("#metrics-stats", Static))


def select(app: GputuiApp, job_id: str) -> None:
    jobs = app.screen.query_one(JobsPane)
    jobs.table.move_cursor(row=[j.id for j in jobs.jobs].index(job_id))


async def test_the_pane_plots_a_run_and_shows_its_pace_eta_and_cost(
    ssh_host: HostProfile, sshd_server: SshServer, tmp_path: Path
) -> None:
    run = preempted_and_resumed(total=60, checkpoint=10, preempted_at=16)  # 30 lines, step 18
    rest = training_run(60)[18:]  # steps 19..60, an eval and a checkpoint at 30, done
    rest = [line.__class__(**{**line.__dict__, "resume_idx": 1}) for line in rest]
    command, go = writer_job(tmp_path / "writer", run + rest, hold_after=len(run))
    meta = await launch(ssh_host, command, "lora")
    app = GputuiApp(start_host="gpu1")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: following(app) and pane(app).metrics.step == 18)
        await until(pilot, lambda: "18/60" in stats(app))
        assert pane(app).job is not None and pane(app).job.id == meta.id
        shown = stats(app)
        assert "18/60 30%" in shown
        assert "1,235" in shown  # tokens/s of the resumed start
        assert "2m06s" in shown  # ETA: 42 steps left at 3 s each
        # To finish: 126 s at $2/h; the run: 54 s trained so far and those 126 s.
        assert "$0.07 to finish · $0.10 in all · $2.00/h" in shown
        assert "training · resume #1" in shown
        # One curve: the steps the resume repeated are not drawn twice.
        assert [p.step for p in pane(app).metrics.steps] == list(range(1, 19))
        plot = pane(app).query_one(PlotextPlot)
        picture = drawn(plot)
        assert "loss" in picture and "lr" in picture and "step" in picture
        assert any(ch in picture for ch in "⠁⠂⠄⡀⢀⠈⠐⠠")  # braille dots: the curves themselves

        sshd_server.kill_connections()  # the link drops while the run holds
        go.touch()
        await until(pilot, lambda: pane(app).metrics.finished, timeout=30)
        await until(pilot, lambda: "done" in stats(app))
        assert [p.step for p in pane(app).metrics.steps] == list(range(1, 61))
        assert pane(app).reconnects >= 1
        shown = stats(app)
        assert "60/60 100%" in shown and "$0.00 to finish · $0.10 in all · $2.00/h" in shown
        assert "eval 1.5000" in shown


async def test_redraws_are_throttled_while_a_long_run_is_read(
    ssh_host: HostProfile, tmp_path: Path
) -> None:
    run = training_run(3000)  # read in a dozen batches when the pane starts
    command, _ = writer_job(tmp_path / "writer", run, pause_s=0.0)
    await launch(ssh_host, command, "long")
    app = GputuiApp(start_host="gpu1")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: following(app) and pane(app).metrics.finished, timeout=30)
        started = time.monotonic()
        await until(pilot, lambda: "3000/3000" in stats(app))
        assert time.monotonic() - started <= metrics_pane.REDRAW_S + 0.5
        assert pane(app).redraws <= 6
        assert len(pane(app).metrics.steps) <= 4096


async def test_a_job_without_metrics_gets_a_clear_placeholder(ssh_host: HostProfile) -> None:
    meta = await launch(ssh_host, "echo just a script", "script")
    app = GputuiApp(start_host="gpu1")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: following(app) and pane(app).ended is not None)
        await pilot.pause(metrics_pane.REDRAW_S + 0.1)
        placeholder = pane(app).query_one(".pane-placeholder", Static)
        assert placeholder.display and not pane(app).query_one(PlotextPlot).display
        text = drawn(placeholder)
        assert "script wrote no metrics" in text and "trainers.lora" in text
        assert pane(app).job is not None and pane(app).job.id == meta.id


async def test_selecting_another_job_follows_its_metrics(
    ssh_host: HostProfile, tmp_path: Path
) -> None:
    command, _ = writer_job(tmp_path / "writer", training_run(20), pause_s=0.0)
    trained = await launch(ssh_host, command, "trained")
    plain = await launch(ssh_host, "echo plain", "plain")
    app = GputuiApp(start_host="gpu1")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: following(app))
        await until(pilot, lambda: len(app.screen.query_one(JobsPane).jobs) == 2)
        select(app, trained.id)
        await until(pilot, lambda: "20/20" in stats(app))
        select(app, plain.id)
        await until(pilot, lambda: "plain wrote no metrics" in drawn(
            pane(app).query_one(".pane-placeholder", Static)))
        assert not pane(app).metrics.has_data
        select(app, trained.id)  # back again: read from the start of the file
        await until(pilot, lambda: "20/20" in stats(app))
        assert [p.step for p in pane(app).metrics.steps] == list(range(1, 21))

        # Digits typed into the log's search box are text, not pane keys.
        screen = app.screen
        assert isinstance(screen, HostScreen)
        await pilot.press("2", "slash", "1", "5")
        search = screen.query_one("#log-search", Input)
        assert search.has_focus and search.value == "15"
        assert screen.pane_of(screen.focused) == "logs"
        await pilot.press("escape", "3")
        assert screen.pane_of(screen.focused) == "metrics"


async def test_bad_values_in_the_metrics_are_skipped_and_the_pane_carries_on(
    ssh_host: HostProfile, tmp_path: Path
) -> None:
    good = json.loads(step_line(1, 10).to_json())
    bad = [{**good, **values} for values in (
        {"step": "2"}, {"loss": "1.5"}, {"time": math.inf}, {"eta": math.nan},
        {"step": math.nan}, {"total_steps": [10]}, {"step": 10**400}, {"elapsed": 10**400},
    )]
    diverged = progress("step", 2, 10, loss=math.nan, lr=1e-3)  # kept: the pane shows nan
    hostile = progress("preempted", 2, 10, reason="\x1b]52;c;cHduZWQ=\x07\x9b2J")
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_bytes(b"".join([
        json.dumps(good).encode() + b"\n",
        *(json.dumps(line).encode() + b"\n" for line in bad),
        b"\xff\xfe not utf-8\n",
        diverged.to_json().encode() + b"\n",
        hostile.to_json().encode() + b"\n",
    ]))
    await launch(ssh_host, f'cp {metrics} "$GPUTUI_JOB_DIR/metrics.jsonl"', "hostile")
    app = GputuiApp(start_host="gpu1")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: following(app) and pane(app).metrics.preempted)
        await until(pilot, lambda: "preempted" in stats(app))
        shown = stats(app)
        assert "2/10 20%" in shown and "nan" in shown and "\\x1b]52;c;" in shown
        assert not any(c in shown for c in "\x1b\x07\x9b")
        assert pane(app).metrics.skipped == len(bad) + 1
        assert [p.step for p in pane(app).metrics.steps] == [1, 2]
