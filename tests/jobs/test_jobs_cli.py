"""The job verbs of the CLI against a real sshd host: run, jobs, logs, stop, attach, setup."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import gputui, wait_until_ended
from sshd import SshServer
from waiting import file_holds, until

from transfer.hosts import HostProfile, HostStore

pytestmark = pytest.mark.usefixtures("job_env")
ROOT = Path(__file__).resolve().parents[2]




def test_run_prints_the_id_and_the_command_runs_exactly(
    ssh_host: HostProfile, jobs_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = gputui(
        capsys,
        "run",
        "gpu1",
        "--name",
        "a 'quoted' $name",
        "--",
        "python3",
        "-c",
        "import sys; print(sys.argv[1:])",
        "it's",
        "$HOME",
        "a;b",
    )
    assert code == 0
    job = out.strip()
    assert out == job + "\n" and job.startswith("a-quoted-name-")
    assert f"gputui logs gpu1 {job} -f" in err
    found = wait_until_ended(capsys, job)
    assert found["state"] == "succeeded" and found["name"] == "a 'quoted' $name"
    assert (jobs_root / job / "log").read_text() == "[\"it's\", '$HOME', 'a;b']\n"

    # One argument is a command line for the shell.
    code, out, _ = gputui(capsys, "run", "gpu1", "--", "echo one; echo two >&2; exit 4")
    second = out.strip()
    assert wait_until_ended(capsys, second)["exit_code"] == 4
    assert (jobs_root / second / "log").read_text() == "one\ntwo\n"


def test_jobs_lists_every_host_with_costs(
    ssh_host: HostProfile, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = gputui(capsys, "jobs")
    assert (code, out.strip()) == (0, "no jobs yet; launch one with: gputui run HOST -- CMD")
    _, out, _ = gputui(capsys, "run", "gpu1", "--name", "sleeper", "--", "sleep 1.2")
    job = out.strip()
    found = wait_until_ended(capsys, job)
    assert found["runtime_s"] >= 1 and found["cost_usd"] == pytest.approx(
        2.0 * found["runtime_s"] / 3600
    )
    code, out, _ = gputui(capsys, "jobs")  # no host: the hosts jobs were launched on
    assert code == 0
    assert "gpu1" in out and job in out and "succeeded" in out and "$0.00" in out


def test_logs_tail_and_whole_log(ssh_host: HostProfile, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = gputui(
        capsys,
        "run",
        "gpu1",
        "--name",
        "counter",
        "--",
        "seq 1 200; printf 'a\\rb\\rfinal\\n'",
    )
    job = out.strip()
    wait_until_ended(capsys, job)
    code, out, _ = gputui(capsys, "logs", "gpu1", job, "--tail", "3")
    assert (code, out) == (0, "199\n200\nfinal\n")
    code, out, _ = gputui(capsys, "logs", "gpu1", "counter")  # by name
    assert out.splitlines() == [str(i) for i in range(1, 201)] + ["final"]
    code, out, err = gputui(capsys, "logs", "gpu1", "no-such-job")
    assert code == 1 and out == ""
    assert err == "gputui: no job 'no-such-job' on gpu1; see `gputui jobs gpu1`\n"


def test_logs_follow_yields_the_output_once_in_order_across_two_killed_links(
    ssh_host: HostProfile, sshd_server: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = gputui(
        capsys,
        "run",
        "gpu1",
        "--name",
        "printer",
        "--",
        'for i in $(seq 1 100); do echo "line $i"; sleep 0.05; done',
    )
    job = out.strip()
    follower = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "logs", "gpu1", job, "-f"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None and follower.stderr is not None
    lines: list[str] = []
    errors: list[str] = []
    readers = [
        threading.Thread(target=lambda: lines.extend(follower.stdout or []), daemon=True),
        threading.Thread(target=lambda: errors.extend(follower.stderr or []), daemon=True),
    ]
    for reader in readers:
        reader.start()
    # Kill every SSH connection twice while the follower is reading the job's output.
    kills = 0
    for after in (5, 25):
        # The second kill waits until the follower said it is back, so that it cuts a link in
        # use rather than one still being restored.
        deadline = time.monotonic() + 30
        while (
            (len(lines) < after or sum("reconnected" in e for e in errors) < kills)
            and time.monotonic() < deadline
            and follower.poll() is None
        ):
            time.sleep(0.01)
        if follower.poll() is None and len(lines) < 100:
            sshd_server.kill_connections()
            kills += 1
    assert follower.wait(timeout=60) == 0, "".join(errors)
    for reader in readers:
        reader.join(timeout=5)
    assert kills == 2
    assert [line.rstrip("\n") for line in lines] == [f"line {i}" for i in range(1, 101)]
    assert sum("reconnecting" in e for e in errors) >= 2
    assert errors[-1].rstrip() == f"gputui: {job} succeeded (exit 0)"


def test_stop_reports_how_the_job_ended(
    ssh_host: HostProfile, jobs_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = gputui(
        capsys,
        "run",
        "gpu1",
        "--name",
        "trap",
        "--",
        "trap 'echo stopping; exit 0' TERM; echo ready; while :; do sleep 0.05; done",
    )
    job = out.strip()
    until(lambda: file_holds(jobs_root / job / "log", "ready"))
    code, out, _ = gputui(capsys, "stop", "gpu1", job, "--grace", "5")
    assert (code, out.strip()) == (0, f"{job}: stopped (SIGTERM; exit 0)")
    code, out, _ = gputui(capsys, "stop", "gpu1", job)
    assert (code, out.strip()) == (0, f"{job} had already ended: stopped (SIGTERM; exit 0)")
    code, _, err = gputui(capsys, "stop", "gpu1", job, "--grace", "-1")
    assert code == 2 and err == "gputui: --grace takes seconds, 0 or more\n"


def test_attach_refuses_an_ended_job_in_one_line(
    ssh_host: HostProfile, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = gputui(capsys, "run", "gpu1", "--", "true")
    job = out.strip()
    wait_until_ended(capsys, job)
    code, out, err = gputui(capsys, "attach", "gpu1", job)
    assert code == 1 and out == ""
    assert err.startswith(f"gputui: {job} has ended (succeeded (exit 0))") and err.count("\n") == 1


def test_attach_hands_the_terminal_to_ssh_and_tmux(
    ssh_host: HostProfile, jobs_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = gputui(
        capsys,
        "run",
        "gpu1",
        "--name",
        "watched",
        "--",
        "echo hello from the job; while :; do sleep 0.1; done",
    )
    job = out.strip()
    until(lambda: file_holds(jobs_root / job / "log", "hello from the job"))
    pid, fd = pty.fork()
    if pid == 0:  # the child: the person's terminal runs `gputui attach`
        os.chdir(ROOT)
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", "tui.cli", "attach", "gpu1", job])
    try:
        seen = _read_until(fd, b"hello from the job", timeout=30)
        for _ in range(3):  # Ctrl+B D: detach; the job keeps running
            time.sleep(0.3)
            os.write(fd, b"\x02d")
            seen += _read_until(fd, b"detached", timeout=10)
            if b"detached" in seen:
                break
        (status,) = until(lambda: _exit_code(pid), 20, what="the attached ssh to exit")
    finally:
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    assert b"hello from the job" in seen and b"detached" in seen
    assert status == 0
    _code, out, _ = gputui(capsys, "jobs", "gpu1", "--json")
    assert next(j for j in json.loads(out) if j["id"] == job)["state"] == "running"


def test_setup_runs_the_host_setup_command_as_a_job(
    ssh_host: HostProfile, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = gputui(capsys, "setup", "gpu1")
    assert code == 2 and "has no setup command" in err
    HostStore().upsert(
        ssh_host.model_copy(update={"setup_command": "echo installing; touch ready.flag"})
    )
    code, out, err = gputui(capsys, "setup", "gpu1")
    assert (code, out) == (0, "installing\n")
    assert (workdir / "ready.flag").exists() and "setup of gpu1 finished" in err
    _, listing, _ = gputui(capsys, "jobs", "gpu1", "--json")
    assert [j["name"] for j in json.loads(listing)] == ["setup"]

    HostStore().upsert(ssh_host.model_copy(update={"setup_command": "echo broken; exit 9"}))
    code, out, err = gputui(capsys, "setup", "gpu1")
    assert (code, out) == (1, "broken\n")
    assert "setup of gpu1 failed (exit 9)" in err


def test_run_usage_errors(ssh_host: HostProfile, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = gputui(capsys, "run", "gpu1")
    assert code == 1 and "no command given" in err
    code, _, err = gputui(capsys, "run", "gpu1", "--name", "x", "python")
    assert code == 2 and "put the command after `--`" in err
    code, _, err = gputui(capsys, "run", "gpu1", "--bogus", "--", "true")
    assert code == 2 and "--bogus" in err
    code, _, err = gputui(capsys, "run", "nohost", "--", "true")
    assert code == 1 and "no host named 'nohost'" in err


def _exit_code(pid: int) -> tuple[int] | None:
    """``(exit code,)`` once the child has exited: a tuple, so that exit code 0 counts as done."""
    done, status = os.waitpid(pid, os.WNOHANG)
    return (os.waitstatus_to_exitcode(status),) if done else None


def _read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_an_unreachable_host_is_one_line(
    ssh_host: HostProfile, capsys: pytest.CaptureFixture[str]
) -> None:
    from sshd import free_port

    HostStore().upsert(ssh_host.model_copy(update={"name": "gone", "port": free_port()}))
    code, out, err = gputui(capsys, "jobs", "gone")
    assert code == 1 and out == ""
    assert err.startswith("gputui: gone: cannot reach gone") and err.count("\n") == 1
    code, out, err = gputui(capsys, "logs", "gone", "some-job")
    assert code == 1 and out == "" and err.count("\n") == 1
