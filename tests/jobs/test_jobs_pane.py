"""The Jobs pane, the Logs pane and the log screen in the app, on real jobs of the local host."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, OptionList, Static
from waiting import pilot_until

from transfer.connect import open_link
from transfer.errors import HostUnreachable
from transfer.hosts import HostProfile, HostStore, local_host
from transfer.jobs.host import HostJobs
from transfer.jobs.launch import launch_job
from transfer.jobs.state import JobMeta, JobState, JobStatus, StopSignal
from tui.app import GputuiApp
from tui.screens import job_actions
from tui.screens.confirm import ConfirmScreen
from tui.screens.log_screen import LogScreen
from tui.screens.new_job import NewJobScreen
from tui.services import jobs as jobs_service
from tui.services.base import ServicesApp
from tui.widgets.job_log import JobLogView
from tui.widgets.jobs_pane import JobsPane

SIZE = (120, 40)
STYLES = Path(__file__).resolve().parents[2] / "tui" / "styles"
SnapCompare = Callable[..., bool]
pytestmark = pytest.mark.usefixtures("job_env")


@pytest.fixture(autouse=True)
def local_workdir(workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Jobs run in ``workdir``; the app runs in an empty project folder (no configs to offer)."""
    monkeypatch.setenv("GPUTUI_LOCAL_WORKDIR", str(workdir))
    monkeypatch.delenv("GPUTUI_LOCAL_SETUP", raising=False)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    return workdir


until = partial(pilot_until, timeout=15.0)


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
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
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
    monkeypatch.setattr(job_actions, "run_in_terminal", ran.append)

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
    monkeypatch.setattr(
        jobs_service, "open_host_jobs", lambda link: FixedJobs(link.host, fixed_statuses())
    )
    monkeypatch.setattr(jobs_service, "POLL_S", 3600.0)

    from textual.app import ComposeResult

    class PaneApp(ServicesApp):
        CSS_PATH: ClassVar = [STYLES / "jobs_pane.tcss"]

        def __init__(self) -> None:
            super().__init__()
            self.hosts = HostStore().load()

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
    from textual.app import ComposeResult

    HostStore().upsert(HostProfile(name="gpu1", hostname="203.0.113.9"))
    monkeypatch.setattr(
        jobs_service, "open_host_jobs", lambda link: FlakyJobs(link.host, fixed_statuses())
    )
    monkeypatch.setattr(jobs_service, "POLL_S", 0.1)

    class PaneApp(ServicesApp):
        CSS_PATH: ClassVar = [STYLES / "jobs_pane.tcss"]

        def __init__(self) -> None:
            super().__init__()
            self.hosts = HostStore().load()

        def compose(self) -> ComposeResult:
            yield JobsPane("gpu1", id="jobs")

    app = PaneApp()
    async with app.run_test(size=(90, 12)) as pilot:
        found = app.query_one(JobsPane)
        await until(pilot, lambda: found.error is not None)
        note = str(found.query_one("#jobs-note", Static).render())
        assert note.startswith("cannot reach gpu1 (203.0.113.9): Connection timed out (list from")
        assert found.table.row_count == 5  # the stale rows stay


# -- the loop's job actions: configs to launch, setup, resume, the output folder to pull ------
def hint(app: GputuiApp) -> str:
    shown = app.screen.query_one("#jobs-hint", Static)
    return str(shown.render()) if shown.display else ""


def notifications(app: GputuiApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_new_job_offers_the_training_configs_of_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "configs" / "dev.yaml").write_text(
        "output_dir: runs/dev\nmodel: {arch: {}}\ntrain: {max_steps: 300}\nlora: {r: 8}\n"
    )
    (project / "configs" / "full.yml").write_text(
        "output_dir: runs/full\nmodel: {name_or_path: org/model}\ntrain: {epochs: 2}\n"
    )
    (project / "configs" / "a100.yaml").write_text("hostname: 203.0.113.7\n")  # a host profile
    (project / "configs" / "broken.yaml").write_text("output_dir: [\n")
    monkeypatch.chdir(project)
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: pane(app).source is not None)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewJobScreen))
        dialog = app.screen
        assert isinstance(dialog, NewJobScreen)
        options = dialog.query_one("#job-configs", OptionList)
        await until(pilot, lambda: options.option_count == 3)
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(3)]
        assert prompts == [
            "configs/dev.yaml  random-init Llama · 300 steps · → runs/dev",
            "configs/full.yml  org/model · 2 epochs · → runs/full",
            "Any command: type it below",
        ]
        await until(pilot, lambda: options.has_focus)
        assert options.highlighted == 0
        command = dialog.query_one("#job-command", Input)
        name = dialog.query_one("#job-name", Input)

        await pilot.press("enter")  # the highlighted config fills the command and the name
        assert command.value == "python -m trainers.lora --config configs/dev.yaml"
        assert name.value == "train-dev"
        assert dialog.query_one("#launch", Button).has_focus

        options.focus()
        await pilot.press("down", "enter")  # a config with no lora section: the plain loop
        assert command.value == "python -m trainers.loop --config configs/full.yml"
        assert name.value == "train-full"

        options.focus()
        await pilot.press("down", "enter")  # any command: the fields empty, ready to type
        assert (command.value, name.value) == ("", "")
        assert command.has_focus
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, NewJobScreen))
        assert pane(app).jobs == []


async def test_a_preempted_job_is_offered_a_resume_that_goes_on_from_its_checkpoint(
    workdir: Path,
) -> None:
    # A stand-in for the trainer: a checkpoint on SIGTERM and exit 143; started again, it
    # finds the checkpoint and finishes.
    command = (
        'if [ -f ckpt ]; then echo "resumed from $(cat ckpt)"; exit 0; fi; '
        "trap 'echo step-3 > ckpt; exit 143' TERM; echo training; while :; do sleep 0.05; done"
    )
    first = await launch(command, "lora dev")
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: state_of(app, first.id).startswith("running"))
        assert hint(app) == ""
        await pilot.press("R")  # a running job has nothing to resume
        assert not isinstance(app.screen, ConfirmScreen)
        assert notifications(app)[-1] == "lora dev is still running: nothing to resume."

        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: state_of(app, first.id) == "stopped (SIGTERM)")
        assert str(table(app).get_cell(first.id, "exit")) == "143"
        await until(pilot, lambda: "R to resume" in hint(app))
        assert hint(app) == "lora dev: preempted (exit 143) — R to resume from its last checkpoint"

        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # the safe answer: nothing starts
        await pilot.pause(0.3)
        assert len(pane(app).jobs) == 1

        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: len(pane(app).jobs) == 2)
        second = pane(app).jobs[0]
        assert second.id != first.id and second.name == "lora dev"
        assert second.meta.command == command and second.meta.workdir == str(workdir)
        assert pane(app).selected() is not None and pane(app).selected().id == second.id  # type: ignore[union-attr]
        await until(pilot, lambda: state_of(app, second.id) == "succeeded")
        logs = app.screen.query_one("#logs-pane-view", JobLogView)
        await until(pilot, lambda: log_text(logs) == ["resumed from step-3"])

        table(app).move_cursor(row=1)  # back on the stopped one: it says where it went on
        await until(pilot, lambda: hint(app).endswith(f"resumed as {second.id} (succeeded)"))
        await pilot.press("R")
        assert not isinstance(app.screen, ConfirmScreen)
        assert notifications(app)[-1] == f"lora dev was resumed already, as {second.id}."
        await pilot.pause(0.3)
        assert len(pane(app).jobs) == 2


async def test_u_runs_the_setup_command_as_a_job_after_asking(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:  # no setup command: says how to add one
        await until(pilot, lambda: pane(app).source is not None)
        await pilot.press("u")
        assert not isinstance(app.screen, ConfirmScreen)
        assert notifications(app)[-1].startswith("local has no setup command; add one with")

    monkeypatch.setenv("GPUTUI_LOCAL_SETUP", "echo installing; echo ok > setup-done")
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: pane(app).source is not None)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = str(app.screen.query_one("#confirm-question", Static).render())
        assert "echo installing; echo ok > setup-done" in question
        await pilot.press("y")
        await until(pilot, lambda: len(pane(app).jobs) == 1)
        job = pane(app).jobs[0]
        assert job.name == "setup"
        await until(pilot, lambda: state_of(app, job.id) == "succeeded")
        assert (workdir / "setup-done").read_text() == "ok\n"
        logs = app.screen.query_one("#logs-pane-view", JobLogView)
        await until(pilot, lambda: log_text(logs) == ["installing"])


async def test_pull_offers_the_selected_jobs_output_folder(workdir: Path) -> None:
    from tui.screens.pull_prompt import PullPromptScreen

    (workdir / "configs").mkdir()
    (workdir / "configs" / "c.yaml").write_text("output_dir: runs/from-config\n")
    by_config = await launch("echo --config configs/c.yaml", "by config")
    linked = await launch(
        'mkdir -p out/adapter && ln -s "$PWD/out" "$GPUTUI_JOB_DIR/output"', "linked"
    )
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:
        for job in (by_config, linked):
            await until(pilot, lambda job=job: state_of(app, job.id) == "succeeded")
        expected = {
            linked.id: str((workdir / "out").resolve()),  # the link the trainer leaves
            by_config.id: str(workdir / "runs" / "from-config"),  # else the config's output_dir
        }
        for row in range(2):
            table(app).move_cursor(row=row)
            await pilot.pause()
            selected = pane(app).selected()
            assert selected is not None
            await pilot.press("P")
            await until(pilot, lambda: isinstance(app.screen, PullPromptScreen))
            assert app.screen.query_one("#pull-path", Input).value == expected[selected.id]
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, PullPromptScreen))
