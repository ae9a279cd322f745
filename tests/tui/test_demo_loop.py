"""The demo loop from the keyboard, on the built-in ``local`` host: what ``make run`` offers.

Push the project, launch the dev training from ``n``, watch its log, stop it (exit 143 with a
checkpoint), resume it to the end and pull the adapter: real tmux, real files, the real trainer
(a shorter dev config, so the whole loop takes well under a minute and a half).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import yaml
from textual.widgets import Input, OptionList
from waiting import pilot_until

from trainers.protocol.jobdir import PID, WRAPPER, PidRecord, boot_id, process_start_ticks
from transfer.hosts import local_host
from transfer.jobs.host import JOBS_ROOT_ENV
from transfer.jobs.launch import TMUX_SOCKET_ENV
from transfer.jobs.state import JobStatus
from tui.app import GputuiApp
from tui.cli import main
from tui.cli.demo import DEMO_WORKDIR, SETUP_CHECK, demo_settings, job_environment, prepare_demo
from tui.screens.confirm import ConfirmScreen
from tui.screens.new_job import NewJobScreen
from tui.screens.pull_prompt import PullPromptScreen
from tui.services import jobs as jobs_service
from tui.services.transfers import TransferRecord
from tui.widgets.job_log import JobLogView
from tui.widgets.jobs_pane import JobsPane

ROOT = Path(__file__).resolve().parents[2]
#: The real jobs of the host (tests/tui/conftest.py swaps in a host with no jobs).
REAL_HOST_JOBS = jobs_service.open_host_jobs
SIZE = (160, 50)
TRAIN_COMMAND = "python -m trainers.lora --config configs/dev.yaml"


until = partial(pilot_until, timeout=90.0)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the demo project, with a dev config cut to 40 short steps; the app runs in it."""
    folder = tmp_path / "project"
    shutil.copytree(ROOT / "trainers", folder / "trainers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "configs" / "data").mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "data" / "chat.jsonl", folder / "configs" / "data")
    shutil.copy(ROOT / "configs" / "prod.yaml", folder / "configs")
    dev = yaml.safe_load((ROOT / "configs" / "dev.yaml").read_text())
    dev["train"].update(max_steps=40, batch_size=4, eval_every=None)
    dev["data"].update(seq_len=128)
    dev["checkpoint"].update(every_steps=10)
    (folder / "configs" / "dev.yaml").write_text(yaml.safe_dump(dev, sort_keys=False))
    (folder / ".gitignore").write_text("runs/\n__pycache__/\n")
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def local_demo_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The local host as ``gputui --demo`` sets it up, with its workdir, jobs and tmux private."""
    host_home = tmp_path / "host"
    workdir, jobs_root = host_home / "work", host_home / "jobs"
    socket_dir = Path(tempfile.mkdtemp(prefix="gtd"))  # sockets have a short length limit
    monkeypatch.setenv("GPUTUI_LOCAL_WORKDIR", str(workdir))
    monkeypatch.setenv("GPUTUI_LOCAL_ENV", job_environment())
    monkeypatch.setenv("GPUTUI_LOCAL_SETUP", "")
    monkeypatch.setenv(JOBS_ROOT_ENV, str(jobs_root))
    monkeypatch.setenv(TMUX_SOCKET_ENV, str(socket_dir / "s"))
    monkeypatch.setattr(jobs_service, "open_host_jobs", REAL_HOST_JOBS)
    try:
        yield workdir
    finally:
        _kill_leftovers(jobs_root)
        subprocess.run(["tmux", "-S", str(socket_dir / "s"), "kill-server"],
                       capture_output=True, check=False)
        shutil.rmtree(socket_dir, ignore_errors=True)


def _kill_leftovers(root: Path) -> None:
    if not root.is_dir():
        return
    for job in root.iterdir():
        with contextlib.suppress(OSError, ValueError):
            record = PidRecord.parse((job / PID).read_text())
            if (record and record.boot_id == boot_id()
                    and process_start_ticks(record.pid) == record.start_ticks):
                os.killpg(record.pgid, signal.SIGKILL)
        with contextlib.suppress(OSError, ValueError):
            pid, _boot, ticks = (job / WRAPPER).read_text().split()
            if process_start_ticks(int(pid)) == int(ticks):
                os.kill(int(pid), signal.SIGKILL)


def pane(app: GputuiApp) -> JobsPane:
    return app.screen.query_one(JobsPane)


def job_named(app: GputuiApp, job_id: str) -> JobStatus | None:
    return next((job for job in pane(app).jobs if job.id == job_id), None)


def log_lines(app: GputuiApp) -> list[str]:
    return list(app.screen.query_one("#logs-pane-view", JobLogView).log_lines.lines)


def transfers(app: GputuiApp) -> list[TransferRecord]:
    return app.transfers.for_host("local")


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_the_demo_loop_from_the_keyboard(project: Path, local_demo_host: Path) -> None:
    workdir = local_demo_host
    app = GputuiApp(start_host="local")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: pane(app).source is not None)

        # p: the project lands in the host's workdir.
        await pilot.press("p")
        await until(pilot, lambda: bool(transfers(app)) and not transfers(app)[0].active)
        assert transfers(app)[0].state == "done", transfers(app)[0].error
        assert (workdir / "configs" / "dev.yaml").read_bytes() == (
            project / "configs" / "dev.yaml"
        ).read_bytes()
        assert (workdir / "trainers" / "lora.py").is_file()

        # n: the project's training configs are offered; the dev one fills the command.
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewJobScreen))
        options = app.screen.query_one("#job-configs", OptionList)
        await until(pilot, lambda: options.option_count == 3)  # dev, prod, any command
        await until(pilot, lambda: options.has_focus)
        assert options.highlighted == 0
        await pilot.press("enter")
        assert app.screen.query_one("#job-command", Input).value == TRAIN_COMMAND
        await pilot.press("enter")  # Launch
        await until(pilot, lambda: len(pane(app).jobs) == 1)
        first = pane(app).jobs[0]
        assert (first.name, first.meta.command) == ("train-dev", TRAIN_COMMAND)

        # Watch: the job runs and its log arrives in the Logs pane, step by step.
        await until(pilot, lambda: any(line.startswith("step ") for line in log_lines(app)))
        running = job_named(app, first.id)
        assert running is not None and running.state.value == "running"

        # s + confirm: SIGTERM; the trainer commits a checkpoint and exits 143.
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: (job := job_named(app, first.id)) is not None
                    and not job.state.is_active)
        stopped = job_named(app, first.id)
        assert stopped is not None and stopped.exit_code == 143, stopped
        assert (workdir / "runs" / "dev" / "checkpoints" / "latest").is_file()
        hint = app.screen.query_one("#jobs-hint")
        assert "preempted (exit 143) — R to resume" in str(hint.render())

        # R + confirm: the same command again; it goes on from the checkpoint to the end.
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: len(pane(app).jobs) == 2)
        second = pane(app).jobs[0]
        assert second.id != first.id and second.meta.command == TRAIN_COMMAND
        await until(pilot, lambda: (job := job_named(app, second.id)) is not None
                    and not job.state.is_active)
        finished = job_named(app, second.id)
        assert finished is not None and finished.state.value == "succeeded", finished
        await until(pilot, lambda: any(line.startswith("done ") for line in log_lines(app)))
        assert any(line.startswith("resume ") for line in log_lines(app))

        # P: the pull offers the job's output folder; Enter fetches it here.
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, PullPromptScreen))
        offered = app.screen.query_one("#pull-path", Input).value
        assert offered == str((workdir / "runs" / "dev").resolve())
        await pilot.press("enter")
        await until(pilot, lambda: len(transfers(app)) == 2 and not transfers(app)[0].active)
        assert transfers(app)[0].state == "done", transfers(app)[0].error
    adapter = project / "dev" / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0


# -- `gputui --demo` (make run) ---------------------------------------------------------------
@pytest.fixture
def demo_variables_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty counts as unset; monkeypatch puts the person's own values back afterwards."""
    for name in demo_settings():
        monkeypatch.setenv(name, "")


@pytest.mark.slow
@pytest.mark.usefixtures("demo_variables_unset")
def test_demo_sets_up_the_local_host_for_this_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert prepare_demo() == ROOT
    assert Path.cwd() == ROOT  # what `p` pushes and where `n` finds configs/dev.yaml
    host = local_host()
    assert host.workdir == DEMO_WORKDIR
    assert host.env_activation == job_environment()
    assert host.setup_command == SETUP_CHECK
    # The environment a job gets runs the trainer's stack: the setup check passes in it.
    checked = subprocess.run(
        ["sh", "-c", f"{host.env_activation} && cd {tmp_path} && {host.setup_command}"],
        capture_output=True, text=True, env={**os.environ, "PATH": "/usr/bin:/bin"},
        check=False, timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("torch ") and "| peft " in checked.stdout


def test_demo_keeps_variables_that_are_already_set(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GPUTUI_LOCAL_WORKDIR", "/srv/demo")
    monkeypatch.setenv("GPUTUI_LOCAL_ENV", "")
    monkeypatch.setenv("GPUTUI_LOCAL_SETUP", "")
    prepare_demo()
    assert local_host().workdir == "/srv/demo"
    assert job_environment(sys.prefix).startswith(". ")


@pytest.mark.usefixtures("demo_variables_unset")
def test_gputui_demo_opens_the_local_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    shot = tmp_path / "demo.txt"
    assert main(["--demo", "--headless", "--size", "120x30", "--screenshot", str(shot)]) == 0
    screen = shot.read_text()
    assert "gputui — local" in screen
    assert f"Workdir       {DEMO_WORKDIR}" in screen
    assert main(["--demo", "--host", "gpu1"]) == 2
    assert "--demo opens the `local` host" in capsys.readouterr().err
