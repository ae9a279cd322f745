"""Fixtures for the job tests: a private jobs folder and tmux server, and an SSH host.

Jobs run for real (tmux, setsid, the wrapper), on this machine through a real sshd. Whatever a
test leaves running is killed at teardown, through the pid records the wrapper wrote.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd import SshServer

from trainers.protocol.jobdir import PID, WRAPPER, PidRecord, boot_id, process_start_ticks
from transfer.hosts import HostProfile, HostStore
from transfer.jobs.host import JOBS_ROOT_ENV
from transfer.jobs.launch import TMUX_SOCKET_ENV


@pytest.fixture
def jobs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The jobs folder every host uses in this test (instead of ~/.gputui/jobs)."""
    root = tmp_path / "host-jobs"
    monkeypatch.setenv(JOBS_ROOT_ENV, str(root))
    yield root
    kill_leftovers(root)


@pytest.fixture
def tmux_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A tmux server of this test alone (a short path: sockets have a length limit)."""
    folder = Path(tempfile.mkdtemp(prefix="gtx"))
    socket = folder / "s"
    monkeypatch.setenv(TMUX_SOCKET_ENV, str(socket))
    yield socket
    subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, check=False)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def job_env(jobs_root: Path, tmux_socket: Path) -> Path:
    return jobs_root


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def ssh_host(sshd_server: SshServer, isolated_home: Path, workdir: Path) -> HostProfile:
    """A trusted SSH host, saved in hosts.yaml as ``gpu1`` at $2/h."""
    sshd_server.trust()
    profile = sshd_server.profile("gpu1", workdir=str(workdir), rate_usd_per_hour=2.0)
    HostStore().upsert(profile)
    return profile


def kill_leftovers(root: Path) -> None:
    """SIGKILL every recorded job process group and wrapper that still runs."""
    if not root.is_dir():
        return
    me = boot_id()
    for job in root.iterdir():
        with contextlib.suppress(OSError):
            record = PidRecord.parse((job / PID).read_text())
            alive = record is not None and record.boot_id == me
            if alive and record and process_start_ticks(record.pid) == record.start_ticks:
                os.killpg(record.pgid, signal.SIGKILL)
        with contextlib.suppress(OSError, ValueError):
            pid, boot, ticks = (job / WRAPPER).read_text().split()
            if boot == me and process_start_ticks(int(pid)) == int(ticks):
                os.kill(int(pid), signal.SIGKILL)
