"""The connection keeper behind ``gputui push``/``pull``: one SSH connection and a waiting
shell kept between commands, on a real sshd."""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sshd import SshServer
from sync_helpers import (
    SMALL_LIMIT,
    assert_nothing_partial,
    drop_connections,
    leftovers,
    saved_profile,
    snapshot,
)

from transfer.hosts import HostProfile, HostStore
from tui.cli import main


def _logins(server: SshServer) -> int:
    return server.log_path.read_text(errors="replace").count("Accepted publickey")


def _run_dir() -> Path:
    return Path(os.environ["GPUTUI_RUN_DIR"])


@pytest.fixture
def saved_box(fresh_sshd: SshServer, tmp_path: Path) -> HostProfile:
    return saved_profile(fresh_sshd, tmp_path / "workdir")


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "train.py").write_text("print('v1')\n")
    return project


def test_pushes_share_one_connection_and_see_every_change(
    saved_box: HostProfile, fresh_sshd: SshServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = _project(tmp_path)
    assert main(["push", "box", str(project)]) == 0
    assert main(["push", "box", str(project)]) == 0
    (project / "train.py").write_text("print('v2: longer')\n")
    assert main(["push", "box", str(project)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("pushed 0 files") and out[2].startswith("pushed 1 files")
    assert (tmp_path / "workdir" / "train.py").read_text() == "print('v2: longer')\n"
    assert _logins(fresh_sshd) == 1
    assert len(list(_run_dir().glob("keeper-*.sock"))) == 1


def test_an_edited_profile_or_a_dropped_connection_gets_a_new_connection(
    saved_box: HostProfile, fresh_sshd: SshServer, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    assert main(["push", "box", str(project)]) == 0
    HostStore().upsert(saved_box.model_copy(update={"workdir": str(tmp_path / "elsewhere")}))
    assert main(["push", "box", str(project)]) == 0
    assert (tmp_path / "elsewhere" / "train.py").exists()
    assert _logins(fresh_sshd) == 2

    drop_connections(fresh_sshd)
    (project / "train.py").write_text("print('after the drop')\n")
    assert main(["push", "box", str(project)]) == 0
    assert (tmp_path / "elsewhere" / "train.py").read_text() == "print('after the drop')\n"
    assert _logins(fresh_sshd) == 3


def test_an_unknown_host_key_is_refused_through_the_keeper(
    fresh_sshd: SshServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    HostStore().upsert(fresh_sshd.profile("box", workdir=str(tmp_path / "workdir")))
    assert main(["push", "box", str(_project(tmp_path))]) == 3
    err = capsys.readouterr().err
    assert err.startswith("gputui: unknown host key for box") and err.count("\n") == 1
    assert not (tmp_path / "workdir").exists()
    fresh_sshd.trust()
    assert main(["push", "box", str(_project(tmp_path))]) == 0


def test_a_killed_command_stops_its_transfer_and_a_rerun_completes_it(
    saved_box: HostProfile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    payload = os.urandom(24 << 20)
    (data / "shard.bin").write_bytes(payload)
    slow = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "push", "box", str(data), "--bwlimit", "4M"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    dest = tmp_path / "workdir"
    deadline = time.monotonic() + 30
    while not any(p.stat().st_size > 1 << 20 for p in dest.rglob("*.part")):
        assert time.monotonic() < deadline and slow.poll() is None, "the push never started"
        time.sleep(0.02)
    slow.kill()
    slow.wait()
    assert main(["push", "box", str(data)]) == 0
    assert (dest / "shard.bin").read_bytes() == payload
    assert not list(dest.rglob("*.part"))
    assert "pushed 1 files" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("seed", [5, 17, 29])
def test_commands_killed_at_random_points_end_identical(
    saved_box: HostProfile, tmp_path: Path, seed: int
) -> None:
    """Big files streaming and a tar batch, the command killed at random moments (before its
    request, mid-scan, mid-stream): no final name ever holds a partial file, and the run after
    the last kill ends byte-identical."""
    rng = random.Random(seed)
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    for index in range(3):
        (source / f"big{index}.bin").write_bytes(rng.randbytes((2 << 20) + index * 4099))
    for index in range(40):
        (source / "sub" / f"s{index}").write_bytes(rng.randbytes(rng.randrange(SMALL_LIMIT)))
    dest = tmp_path / "workdir" / "mirror"
    for _ in range(4):
        command = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "push", "box", str(source), "mirror",
             "--bwlimit", "4M"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.05, 1.2))
        command.kill()
        command.wait()
        assert_nothing_partial(source, dest)
    assert main(["push", "box", str(source), "mirror"]) == 0
    assert snapshot(dest) == snapshot(source)
    assert leftovers(dest) == []


def test_the_keeper_ends_when_idle(
    saved_box: HostProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUTUI_KEEP_S", "1")
    assert main(["push", "box", str(_project(tmp_path))]) == 0
    log = next(_run_dir().glob("keeper-*.log")).read_text()
    pid = int(re.search(r"keeper (\d+) on", log).group(1))  # type: ignore[union-attr]
    deadline = time.monotonic() + 15
    while _alive(pid) or list(_run_dir().glob("*.sock")):
        assert time.monotonic() < deadline, "the keeper outlived its idle time"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_without_a_keeper_the_command_does_the_work_itself(
    saved_box: HostProfile, fresh_sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUTUI_KEEP_S", "0")
    project = _project(tmp_path)
    assert main(["push", "box", str(project)]) == 0
    assert main(["push", "box", str(project)]) == 0
    assert _logins(fresh_sshd) == 2
    assert not _run_dir().exists() or not list(_run_dir().iterdir())


def test_a_run_folder_others_can_enter_is_not_used(
    saved_box: HostProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared-run"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    monkeypatch.setenv("GPUTUI_RUN_DIR", str(shared))
    assert main(["push", "box", str(_project(tmp_path))]) == 0
    assert (tmp_path / "workdir" / "train.py").exists()
    assert list(shared.iterdir()) == []


def test_a_transfer_folder_where_the_command_runs_does_not_shadow_the_keeper(
    saved_box: HostProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person's project may well have a package called ``transfer``."""
    project = _project(tmp_path)
    (project / "transfer").mkdir()
    (project / "transfer" / "__init__.py").write_text("raise ImportError('not gputui')\n")
    (project / "transfer" / "keeper.py").write_text("raise SystemExit(9)\n")
    monkeypatch.chdir(project)
    monkeypatch.setenv("GPUTUI_HOME", os.path.relpath(os.environ["GPUTUI_HOME"], project))
    assert main(["push", "box"]) == 0
    assert (tmp_path / "workdir" / "transfer" / "keeper.py").exists()
    assert list(_run_dir().glob("keeper-*.sock"))


def test_a_command_killed_while_connecting_does_not_hold_up_the_next(
    saved_box: HostProfile, tmp_path: Path
) -> None:
    """The host takes the TCP connection and never answers; the command is killed. The same
    push, the profile fixed, goes through at once instead of waiting out the first one's
    login timeout."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    silent.settimeout(20)
    HostStore().upsert(saved_box.model_copy(update={"port": silent.getsockname()[1]}))
    project = _project(tmp_path)
    command = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "push", "box", str(project)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    held, _ = silent.accept()
    command.kill()
    command.wait()
    HostStore().upsert(saved_box)
    started = time.monotonic()
    assert main(["push", "box", str(project)]) == 0
    assert time.monotonic() - started < 10
    held.close()
    silent.close()


def test_a_bwlimit_push_ends_the_kept_shell_it_cannot_use(
    saved_box: HostProfile, fresh_sshd: SshServer, tmp_path: Path
) -> None:
    """A push with nothing to send leaves its listing's shell waiting on the host for the
    next command; a --bwlimit push cannot use it (its channel's window is too large for the
    limit) and ends it instead of leaving it behind."""
    project = _project(tmp_path)
    assert main(["push", "box", str(project)]) == 0
    assert main(["push", "box", str(project)]) == 0
    assert _waiting_shells(fresh_sshd) == 1
    changed = project / "train.py"
    changed.write_text("print('v2')\n")
    later = changed.stat().st_mtime + 10  # same size: only a newer mtime tells the quick check
    os.utime(changed, (later, later))
    assert main(["push", "box", str(project), "--bwlimit", "1M"]) == 0
    assert (tmp_path / "workdir" / "train.py").read_text() == "print('v2')\n"
    deadline = time.monotonic() + 5
    while _waiting_shells(fresh_sshd) != 0:
        assert time.monotonic() < deadline, f"{_waiting_shells(fresh_sshd)} shells wait"
        time.sleep(0.05)


def _waiting_shells(server: SshServer) -> int:
    """Shells on the host waiting for a next command (they run the ``gputui_next`` read)."""
    assert server.pid is not None
    return sum(
        1 for p in psutil.Process(server.pid).children(recursive=True)
        if p.name() == "sh" and "gputui_next" in " ".join(p.cmdline())
    )
