"""Jobs on a real sshd host with real tmux: launch, states, exit codes, stop, logs, loss."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from sshd import SshServer
from waiting import file_holds, until_async

from trainers.protocol.jobdir import PID, PidRecord, job_is_running
from transfer.connect import open_link
from transfer.hosts import HostProfile, local_host
from transfer.jobs.events import LogEnded, LogLines, LogReconnecting
from transfer.jobs.host import HostJobs
from transfer.jobs.launch import command_from_argv, launch_job
from transfer.jobs.logs import follow_log, tail_lines
from transfer.jobs.state import JobState, JobStatus
from transfer.jobs.stop import stop_job

pytestmark = pytest.mark.usefixtures("job_env")


async def wait_for(
    jobs: HostJobs, job_id: str, states: set[JobState], timeout: float = 10.0
) -> JobStatus:
    async def reached() -> JobStatus | None:
        status = await jobs.status(job_id)
        return status if status.state in states else None

    return await until_async(reached, timeout, what=f"{job_id} to reach {sorted(states)}")


async def collect(events: AsyncIterator[object]) -> tuple[list[str], list[object]]:
    lines: list[str] = []
    seen: list[object] = []
    async for event in events:
        seen.append(event)
        if isinstance(event, LogLines):
            lines.extend(event.lines)
    return lines, seen


async def test_launch_runs_in_tmux_and_reports_exit_codes(
    ssh_host: HostProfile, jobs_root: Path, tmux_socket: Path, workdir: Path
) -> None:
    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        waits = "pwd; echo $GPUTUI_JOB_ID; while [ ! -e go ]; do sleep 0.05; done"
        ok = await launch_job(jobs, waits, name="ok job")
        bad = await launch_job(jobs, "echo failing >&2; exit 3", name="bad job")
        assert ok.runner == "tmux" and ok.tmux_session == ok.id

        running = await wait_for(jobs, ok.id, {JobState.RUNNING})
        assert running.state is JobState.RUNNING and running.exit_code is None
        sessions = subprocess.run(
            ["tmux", "-S", str(tmux_socket), "ls", "-F", "#{session_name}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        assert ok.id in sessions
        assert job_is_running(jobs_root / ok.id)  # what the idle watchdog reads agrees
        (workdir / "go").touch()

        done = await wait_for(jobs, ok.id, {JobState.SUCCEEDED, JobState.FAILED})
        failed = await wait_for(jobs, bad.id, {JobState.SUCCEEDED, JobState.FAILED})
        assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0)
        assert (failed.state, failed.exit_code, failed.detail) == (JobState.FAILED, 3, "exit 3")
        assert done.runtime_s is not None and done.ended_at is not None
        assert not job_is_running(jobs_root / ok.id)

        log = (jobs_root / ok.id / "log").read_text()
        assert log == f"{workdir}\n{ok.id}\n"
        assert (jobs_root / bad.id / "log").read_text() == "failing\n"
        listed = [j.id for j in await jobs.list()]
        assert listed == [ok.id, bad.id]
        meta = json.loads((jobs_root / ok.id / "meta.json").read_text())
        assert meta["command"] == waits
        assert meta["host"] == "gpu1" and meta["workdir"] == str(workdir)


async def test_the_git_commit_of_the_work_folder_is_recorded(
    ssh_host: HostProfile, workdir: Path
) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "pushed tree"]):
        subprocess.run(["git", "-C", str(workdir), *args], env=env, check=True)
    head = subprocess.run(
        ["git", "-C", str(workdir), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, "true")
        listed = await jobs.status(meta.id)
    assert meta.git_commit == head and listed.meta.git_commit == head


async def test_without_tmux_the_same_files_are_written(
    ssh_host: HostProfile, jobs_root: Path
) -> None:
    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, "echo detached; exit 5", use_tmux=False)
        status = await wait_for(jobs, meta.id, {JobState.FAILED, JobState.SUCCEEDED})
    assert meta.runner == "nohup" and meta.tmux_session is None
    assert (status.state, status.exit_code) == (JobState.FAILED, 5)
    folder = jobs_root / meta.id
    assert (folder / "log").read_text() == "detached\n"
    assert {"meta.json", "pid", "exit_code", "ended_at", "log"} <= {
        p.name for p in folder.iterdir()
    }
    assert PidRecord.parse((folder / PID).read_text()) is not None


HOSTILE_NAME = 'it\'s "$HOME"; rm -rf / `x`\nsecond line \\ $(date)'
HOSTILE_COMMAND = (
    "printf '%s\\n' \"it's\" '$HOME' 'a;b' \"$((6 * 7))\"\n"
    "cat <<'EOF'\n$NOT_EXPANDED `nor this`\nEOF\n"
    'echo "args:$#"'
)


async def test_hostile_names_and_commands_pass_through_exactly(
    ssh_host: HostProfile, jobs_root: Path
) -> None:
    argv_command = command_from_argv(
        ["python3", "-c", "import sys; print(sys.argv[1:])", "it's", "$HOME", "a;b", "x\ny", ""]
    )
    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        shell = await launch_job(jobs, HOSTILE_COMMAND, name=HOSTILE_NAME)
        argv = await launch_job(jobs, argv_command, name="--name=$(id)")
        for meta in (shell, argv):
            await wait_for(jobs, meta.id, {JobState.SUCCEEDED, JobState.FAILED})
        statuses = {s.id: s for s in await jobs.list()}
    assert statuses[shell.id].name == HOSTILE_NAME
    assert statuses[shell.id].meta.command == HOSTILE_COMMAND
    assert statuses[argv.id].name == "--name=$(id)"
    assert (jobs_root / shell.id / "log").read_text() == (
        "it's\n$HOME\na;b\n42\n$NOT_EXPANDED `nor this`\nargs:0\n"
    )
    assert (jobs_root / argv.id / "log").read_text() == (
        "[\"it's\", '$HOME', 'a;b', 'x\\ny', '']\n"
    )
    assert statuses[shell.id].state is JobState.SUCCEEDED


async def test_environment_activation_runs_first(ssh_host: HostProfile, jobs_root: Path) -> None:
    host = ssh_host.model_copy(update={"env_activation": "export TRAIN_ENV='it'\"'\"'s on'"})
    async with open_link(host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, 'echo "$TRAIN_ENV"')
        good = await wait_for(jobs, meta.id, {JobState.SUCCEEDED, JobState.FAILED})
        broken = await launch_job(jobs, "echo never", env_activation="false")
        bad = await wait_for(jobs, broken.id, {JobState.SUCCEEDED, JobState.FAILED})
    assert good.state is JobState.SUCCEEDED
    assert (jobs_root / meta.id / "log").read_text() == "it's on\n"
    assert (bad.state, bad.exit_code) == (JobState.FAILED, 126)
    assert "activation failed" in (jobs_root / broken.id / "log").read_text()


async def test_stop_lets_a_term_trap_finish_inside_the_grace(
    ssh_host: HostProfile, jobs_root: Path, workdir: Path
) -> None:
    script = (
        "trap 'echo checkpoint > saved.txt; echo saved; exit 0' TERM\n"
        "echo ready\n"
        "while :; do sleep 0.05; done"
    )
    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, script, name="trainer")
        await until_async(lambda: file_holds(jobs_root / meta.id / "log", "ready\n"))
        started = time.monotonic()
        status = await stop_job(jobs, meta.id, grace_s=10)
        took = time.monotonic() - started
    assert status.state is JobState.STOPPED
    assert [s.name for s in status.stop_signals] == ["TERM"]
    assert status.exit_code == 0 and status.detail == "SIGTERM; exit 0"
    assert (workdir / "saved.txt").read_text() == "checkpoint\n"
    assert took < 5  # it ended on SIGTERM: no waiting out the grace period
    assert (jobs_root / meta.id / "log").read_text().endswith("saved\n")


async def test_stop_kills_after_the_grace_when_term_is_ignored(
    ssh_host: HostProfile, jobs_root: Path, workdir: Path
) -> None:
    script = (
        "trap 'echo term >> trapped.txt' TERM\n"
        "sh -c 'trap \"\" TERM; sleep 60' &\n"  # a child in the same group that ignores TERM
        "echo ready\n"
        "while :; do sleep 0.05; done"
    )
    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, script, name="stubborn")
        await until_async(lambda: file_holds(jobs_root / meta.id / "log", "ready\n"))
        record = PidRecord.parse((jobs_root / meta.id / PID).read_text())
        assert record is not None
        started = time.monotonic()
        status = await stop_job(jobs, meta.id, grace_s=1.0)
        took = time.monotonic() - started
    assert status.state is JobState.STOPPED
    assert [s.name for s in status.stop_signals] == ["TERM", "KILL"]
    assert status.exit_code == 137 and status.detail.startswith("SIGKILL after")
    assert (workdir / "trapped.txt").read_text().startswith("term\n")
    assert 1.0 <= took < 6
    await asyncio.sleep(0.2)
    assert group_members(record.pgid) == []  # nothing of the group is left, the child included


async def test_stop_with_no_grace_kills_at_once(ssh_host: HostProfile, jobs_root: Path) -> None:
    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, "trap 'echo term' TERM; echo ready; sleep 60")
        await until_async(lambda: file_holds(jobs_root / meta.id / "log", "ready\n"))
        status = await stop_job(jobs, meta.id, grace_s=0)
        again = await stop_job(jobs, meta.id, grace_s=0)
    assert status.state is JobState.STOPPED and status.exit_code == 137
    assert [s.name for s in status.stop_signals] == ["KILL"]
    assert again == status or again.state is JobState.STOPPED  # stopping an ended job: no-op
    assert "term" not in (jobs_root / meta.id / "log").read_text()


async def test_reboot_and_pid_reuse_make_a_job_lost(ssh_host: HostProfile, jobs_root: Path) -> None:
    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        metas = [await launch_job(jobs, "echo up; sleep 30", name=f"victim {i}") for i in range(3)]
        for meta in metas:
            log = jobs_root / meta.id / "log"
            await until_async(lambda log=log: file_holds(log, "up\n"))
        records = [PidRecord.parse((jobs_root / m.id / PID).read_text()) for m in metas]
        assert all(r is not None for r in records)
        rebooted, reused, vanished = (jobs_root / m.id for m in metas)
        r0, r1, r2 = records
        assert r0 is not None and r1 is not None and r2 is not None

        # A reboot: the recorded boot id is not this boot's.
        (rebooted / PID).write_text(f"{r0.pid} {r0.pgid} 00000000-dead-beef {r0.start_ticks}\n")
        # PID reuse: the recorded PID is now some other process (this test's own).
        (reused / PID).write_text(f"{os.getpid()} {r1.pgid} {r1.boot_id} {r1.start_ticks}\n")
        # Vanished: the process and its wrapper were killed, so no exit code was written.
        wrapper_pid = int((vanished / "wrapper").read_text().split()[0])
        os.kill(wrapper_pid, 9)
        os.killpg(r2.pgid, 9)
        await asyncio.sleep(0.2)

        states = {s.id: s for s in await jobs.list()}
    assert states[metas[0].id].state is JobState.LOST
    assert states[metas[0].id].detail == "the host rebooted"
    assert states[metas[1].id].state is JobState.LOST
    assert "PID now belongs to another process" in states[metas[1].id].detail
    assert states[metas[2].id].state is JobState.LOST
    assert states[metas[2].id].detail == "its process vanished without an exit code"
    assert not job_is_running(rebooted) and not job_is_running(reused)


async def test_carriage_return_progress_bars_show_their_last_state(
    ssh_host: HostProfile,
) -> None:
    command = (
        "printf 'epoch 1\\n'\n"
        "for p in 10 50 90; do printf '\\r%s%%' $p; sleep 0.3; done\n"
        "printf '\\r100%%\\n'\n"
        "printf 'windows line\\r\\n'\n"
        "printf 'no newline at the end'"
    )
    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, command)
        lines, events = await collect(follow_log(jobs, meta.id))
    assert lines == ["epoch 1", "100%", "windows line", "no newline at the end"]
    partials = [e.partial for e in events if isinstance(e, LogLines) and e.partial]
    assert "50%" in partials  # the bar was shown live while it was being redrawn
    assert isinstance(events[-1], LogEnded)
    assert events[-1].status is not None and events[-1].status.state is JobState.SUCCEEDED


async def test_tail_and_reading_after_the_job_ended_and_a_new_link(
    ssh_host: HostProfile,
) -> None:
    async with open_link(ssh_host) as link:
        meta = await launch_job(HostJobs(link), "seq 1 5000; printf 'partial'")
        await wait_for(HostJobs(link), meta.id, {JobState.SUCCEEDED})
    async with open_link(ssh_host) as link:  # a fresh connection, as after an app restart
        jobs = HostJobs(link)
        assert [j.id for j in await jobs.list()] == [meta.id]
        last = await tail_lines(jobs, meta.id, 3)
        assert last.lines == ["4998", "4999", "5000"] and last.partial == "partial"
        everything, _ = await collect(follow_log(jobs, meta.id, follow=False))
        tailed, _ = await collect(follow_log(jobs, meta.id, follow=False, tail=2))
        nothing = await tail_lines(jobs, meta.id, 0)
    assert everything == [str(i) for i in range(1, 5001)] + ["partial"]
    assert tailed == ["4999", "5000", "partial"]
    assert nothing.lines == [] and nothing.offset == len("\n".join(everything[:-1])) + 1


async def test_follow_survives_killed_connections_without_gaps_or_repeats(
    ssh_host: HostProfile, sshd_server: SshServer
) -> None:
    command = 'for i in $(seq 1 80); do echo "line $i"; sleep 0.04; done'
    lines: list[str] = []
    events: list[object] = []
    kills: list[int] = []

    def kill_while_reading() -> None:
        for after in (5, 25):
            deadline = time.monotonic() + 30
            while len(lines) < after and time.monotonic() < deadline:
                time.sleep(0.01)
            sshd_server.kill_connections()
            kills.append(len(lines))

    async with open_link(ssh_host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, command, name="printer")
        killer = threading.Thread(target=kill_while_reading, daemon=True)
        killer.start()
        async for event in follow_log(jobs, meta.id):
            events.append(event)
            if isinstance(event, LogLines):
                lines.extend(event.lines)
        killer.join()
        status = await jobs.status(meta.id)
    assert len(kills) == 2 and all(k < 80 for k in kills)
    assert lines == [f"line {i}" for i in range(1, 81)]
    assert sum(isinstance(e, LogReconnecting) for e in events) >= 2
    assert status.state is JobState.SUCCEEDED  # the job never noticed


async def test_the_local_host_runs_jobs_the_same_way(jobs_root: Path, workdir: Path) -> None:
    host = local_host().model_copy(update={"workdir": str(workdir)})
    async with open_link(host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, "echo local; exit 2")
        lines, events = await collect(follow_log(jobs, meta.id))
    assert lines == ["local"]
    final = events[-1]
    assert isinstance(final, LogEnded) and final.status is not None
    assert (final.status.state, final.status.exit_code) == (JobState.FAILED, 2)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
    return members
