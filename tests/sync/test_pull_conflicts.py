"""Nothing local is destroyed without ``--delete``: a folder with files is never replaced by a
file (nor a file by a folder), excluded entries are never touched, the dry run lists every
replacement, and files that merely look like our temp files are left alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sshd import SshServer
from sync_helpers import saved_profile, sync

from transfer.hosts import HostProfile
from tui.cli import main


def host_tree(remote: Path) -> None:
    (remote / "cfg").mkdir(parents=True)
    (remote / "cfg" / "a.yaml").write_bytes(b"a: 1\n")
    (remote / "data").write_bytes(b"the host's data is a file\n")
    (remote / "logs").write_bytes(b"the host's logs is a file\n")
    (remote / "was-empty").write_bytes(b"a file where an empty folder was\n")
    (remote / "ln").write_bytes(b"a file where a link was\n")
    (remote / "plain.txt").write_bytes(b"plain\n")


def local_tree(local: Path) -> None:
    (local / "data").mkdir(parents=True)
    (local / "data" / "mine.txt").write_bytes(b"my own work\n")
    (local / "logs").mkdir()
    (local / "logs" / "train.log").write_bytes(b"excluded: never touched\n")
    (local / "was-empty").mkdir()
    (local / "cfg").write_bytes(b"my config file\n")
    os.symlink("plain.txt", local / "ln")


def intact(local: Path) -> None:
    assert (local / "data" / "mine.txt").read_bytes() == b"my own work\n"
    assert (local / "logs" / "train.log").read_bytes() == b"excluded: never touched\n"
    assert (local / "cfg").read_bytes() == b"my config file\n"


async def test_a_pull_reports_conflicts_and_destroys_nothing(
    box: HostProfile, tmp_path: Path
) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    host_tree(remote)
    local_tree(local)
    result = await sync(box, "pull", local, remote, excludes=("*.log",))
    intact(local)
    assert not result.ok
    reasons = {p.path: p.reason for p in result.problems}
    assert sorted(reasons) == ["cfg", "data", "logs"]
    assert all("--delete" in reasons[rel] for rel in ("cfg", "data"))
    assert "excluded" in reasons["logs"]
    # What is not in conflict moved: an empty folder and a link make way for the host's files.
    assert (local / "was-empty").read_bytes() == b"a file where an empty folder was\n"
    assert not (local / "ln").is_symlink()
    assert (local / "plain.txt").read_bytes() == b"plain\n"

    replaced = await sync(box, "pull", local, remote, excludes=("*.log",), delete=True)
    assert (local / "data").read_bytes() == b"the host's data is a file\n"
    assert (local / "cfg" / "a.yaml").read_bytes() == b"a: 1\n"
    assert (local / "logs" / "train.log").exists()  # excluded: kept even with --delete
    assert [p.path for p in replaced.problems] == ["logs"]


async def test_the_dry_run_lists_every_replacement_and_conflict(
    box: HostProfile, tmp_path: Path
) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    host_tree(remote)
    local_tree(local)
    result = await sync(box, "pull", local, remote, excludes=("*.log",), dry_run=True)
    plan = result.plan
    assert plan is not None and not result.ok
    assert plan.replace == ["ln", "was-empty"]
    assert plan.conflicts == ["cfg", "data", "logs"]
    assert os.path.islink(local / "ln") and (local / "was-empty").is_dir()
    intact(local)


async def test_files_that_look_like_temp_files_are_left_alone(
    box: HostProfile, tmp_path: Path
) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    remote.mkdir()
    (remote / "x").write_bytes(os.urandom(200_000))
    lookalikes = ["x.part", ".x.part", ".x.0123456789ab.part", ".gputui-stage.0123456789ab.part/f"]
    for rel in lookalikes:
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(b"the user's own\n")
    result = await sync(box, "pull", local, remote)
    assert result.ok
    for rel in lookalikes:
        assert (local / rel).read_bytes() == b"the user's own\n", rel


@pytest.fixture
def saved_box(sshd_server: SshServer, tmp_path: Path) -> HostProfile:
    return saved_profile(sshd_server, tmp_path / "workdir")


def test_the_cli_lists_conflicts_and_exits_non_zero(
    saved_box: HostProfile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote, local = tmp_path / "workdir" / "remote", tmp_path / "local"
    host_tree(remote)
    local_tree(local)
    args = ["pull", "box", "remote", str(local), "--exclude", "*.log"]
    assert main([*args, "--dry-run"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "  replace was-empty" in out and "  replace ln" in out
    assert any(line.startswith("  conflict data: ") for line in out)
    assert main(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[2] for line in err if "not sent" in line] == [
        "cfg", "data", "logs"
    ]
    intact(local)
