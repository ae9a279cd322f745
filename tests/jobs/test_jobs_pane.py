"""The Jobs pane, the Logs pane and the log screen in the app, on real jobs of the local host."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from transfer.connect import open_link
from transfer.errors import HostUnreachable
from transfer.hosts import HostProfile, HostStore, local_host
from transfer.jobs import HostJobs, JobState, launch_job
from transfer.jobs.state import JobMeta, JobStatus, StopSignal
from tui.app import GputuiApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.log_screen import LogScreen
from tui.screens.new_job import NewJobScreen
from tui.widgets import jobs_pane
from tui.widgets.job_log import JobLogView
from tui.widgets.jobs_pane import JobsPane

SIZE = (120, 40)
SnapCompare = Callable[..., bool]
pytestmark = pytest.mark.usefixtures("job_env")


@pytest.fixture(autouse=True)
def local_workdir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GPUTUI_LOCAL_WORKDIR", str(workdir))
    return workdir


async def until(pilot: Pilot[Any], check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)


def pane(app: GputuiApp) -> JobsPane:
    return app.screen.query_one(JobsPane)


def table(app: GputuiApp) -> DataTable[Any]:
    return pane(app).table


def state_of(app: GputuiApp, job_id: str) -> str:
    try:
        return str(table(app).get_cell(job_id, "state"))
    except Exception:
        return ""


def log_text(view: JobLogView) -> list[str]:
    return list(view.log_lines.lines)


async def launch(command: str, name: str) -> JobMeta:
    async with open_link(local_host()) as link:
        return await launch_job(HostJobs(link), command, name=name)


async def test_jobs_are_listed_again_after_a_fresh_app_start() -> None:
    meta = await launch("echo hello from before; sleep 30", "persistent")
    for _ in range(2):  # the second app knows nothing the first one had
        await _shows_the_running_job(GputuiApp(start_host="local"), meta)


async def _shows_the_running_job(app: GputuiApp, meta: JobMeta) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: state_of(app, meta.id).startswith("running"))
        assert str(table(app).get_cell(meta.id, "name")) == "persistent"
        logs = app.screen.query_one("#logs-pane-view", JobLogView)
        await until(pilot, lambda: log_text(logs) == ["hello from before"])


async def test_new_job_log_screen_and_graceful_stop(workdir: Path) -> None:
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: pane(app).source is not None and not pane(app).jobs)
        table(app).focus()
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewJobScreen))
        app.screen.query_one("#job-command", Input).value = (
            "trap 'echo saving; echo saved > ckpt; exit 0' TERM; "
            'echo "started $GPUTUI_JOB_ID"; while :; do sleep 0.05; done'
        )
        app.screen.query_one("#job-name", Input).value = "my 'run' $1"
        await pilot.press("enter", "enter")
        await until(pilot, lambda: len(pane(app).jobs) == 1)
        job = pane(app).jobs[0]
        assert job.name == "my 'run' $1"
        await until(pilot, lambda: state_of(app, job.id).startswith("running"))

        logs = app.screen.query_one("#logs-pane-view", JobLogView)
        await until(pilot, lambda: log_text(logs) == [f"started {job.id}"])

        table(app).focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        screen_view = app.screen.query_one(JobLogView)
        await until(pilot, lambda: log_text(screen_view) == [f"started {job.id}"])
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, LogScreen))

        table(app).focus()
        await pilot.press("s")
        await until(pilot, lambda: state_of(app, job.id) == "stopped (SIGTERM)")
        assert str(table(app).get_cell(job.id, "exit")) == "0"
        assert (workdir / "ckpt").read_text() == "saved\n"
        await until(pilot, lambda: log_text(logs)[-1:] == ["saving"])
        # The log's status line learns the end state on its own poll, a moment after the table.
        status = logs.query_one("#log-status", Static)
        await until(pilot, lambda: "stopped (SIGTERM; exit 0)" in str(status.render()))


async def test_capital_s_kills_after_a_confirmation() -> None:
    meta = await launch("trap 'echo term' TERM; echo up; sleep 60", "stubborn")
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: state_of(app, meta.id).startswith("running"))
        table(app).focus()
        await pilot.press("S")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # the safe answer first: nothing happens
        await pilot.pause(0.3)
        assert state_of(app, meta.id).startswith("running")
        await pilot.press("S")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: state_of(app, meta.id) == "stopped (SIGKILL)")
        assert str(table(app).get_cell(meta.id, "exit")) == "137"
        assert pane(app).jobs[0].stop_signals[0].name == "KILL"


async def test_attach_suspends_the_app_and_runs_tmux(
    monkeypatch: pytest.MonkeyPatch, tmux_socket: Path
) -> None:
    meta = await launch("sleep 30", "watched")
    ran: list[list[str]] = []
    monkeypatch.setattr(jobs_pane, "run_in_terminal", ran.append)

    @contextlib.contextmanager
    def suspend() -> Iterator[None]:
        ran.append(["suspended"])
        yield

    app = GputuiApp(start_host="local")
    monkeypatch.setattr(app, "suspend", suspend)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: state_of(app, meta.id).startswith("running"))
        table(app).focus()
        await pilot.press("a")
        await pilot.pause()
    assert ran == [
        ["suspended"],
        ["tmux", "-S", str(tmux_socket), "attach-session", "-t", f"={meta.id}"],
    ]


# -- a snapshot with fixed jobs and a frozen clock --------------------------------------
class FixedLink:
    def __init__(self, host: HostProfile) -> None:
        self.host = host

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None


class FixedJobs(HostJobs):
    """Jobs as a host would report them at one fixed moment."""

    def __init__(self, host: HostProfile, jobs: list[JobStatus]) -> None:
        super().__init__(FixedLink(host), root="/jobs")  # type: ignore[arg-type]
        self.fixed = jobs

    async def list(self) -> list[JobStatus]:
        return self.fixed


def fixed_statuses() -> list[JobStatus]:
    def status(name: str, state: JobState, started: float, **extra: Any) -> JobStatus:
        meta = JobMeta(
            id=f"{name.split()[0].lower()}-abcde",
            name=name,
            command="python train.py",
            workdir="/w",
            host="gpu1",
            created_at=started,
        )
        return JobStatus(meta=meta, state=state, started_at=started, observed_at=10_000.0, **extra)

    return [
        status("warmup", JobState.SUCCEEDED, 100.0, exit_code=0, ended_at=400.0, detail="exit 0"),
        status("lora r=16", JobState.FAILED, 500.0, exit_code=1, ended_at=560.0, detail="exit 1"),
        status(
            "sweep lr=3e-4",
            JobState.STOPPED,
            600.0,
            exit_code=0,
            ended_at=4200.0,
            stop_signals=(StopSignal("TERM", 4190.0),),
            detail="SIGTERM; exit 0",
        ),
        status("lost one", JobState.LOST, 700.0, detail="the host rebooted"),
        status("train 7b", JobState.RUNNING, 3000.0),
    ]


def test_snapshot_jobs_pane(
    snap_compare: SnapCompare, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = HostProfile(name="gpu1", hostname="203.0.113.9", rate_usd_per_hour=1.89)
    HostStore().upsert(host)
    monkeypatch.setattr(jobs_pane, "open_host_jobs", lambda h: FixedJobs(h, fixed_statuses()))
    monkeypatch.setattr(jobs_pane, "POLL_S", 3600.0)

    from textual.app import App, ComposeResult

    class PaneApp(App[None]):
        def compose(self) -> ComposeResult:
            yield JobsPane("gpu1", id="jobs")

    async def run_before(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: bool(pilot.app.query_one(JobsPane).jobs))
        await pilot.pause()

    assert snap_compare(PaneApp(), terminal_size=(90, 12), run_before=run_before)


class FlakyJobs(FixedJobs):
    """Answers once, then the host stops answering."""

    calls = 0

    async def list(self) -> list[JobStatus]:
        FlakyJobs.calls += 1
        if FlakyJobs.calls > 1:
            raise HostUnreachable("cannot reach gpu1 (203.0.113.9): Connection timed out")
        return self.fixed


async def test_a_host_that_stops_answering_keeps_the_last_list_with_its_age(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.app import App, ComposeResult

    HostStore().upsert(HostProfile(name="gpu1", hostname="203.0.113.9"))
    monkeypatch.setattr(jobs_pane, "open_host_jobs", lambda h: FlakyJobs(h, fixed_statuses()))
    monkeypatch.setattr(jobs_pane, "POLL_S", 0.1)

    class PaneApp(App[None]):
        def compose(self) -> ComposeResult:
            yield JobsPane("gpu1", id="jobs")

    app = PaneApp()
    async with app.run_test(size=(90, 12)) as pilot:
        found = app.query_one(JobsPane)
        await until(pilot, lambda: found.error is not None)
        note = str(found.query_one("#jobs-note", Static).render())
        assert note.startswith("cannot reach gpu1 (203.0.113.9): Connection timed out (list from")
        assert found.table.row_count == 5  # the stale rows stay
