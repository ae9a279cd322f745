"""Push and pull over a real sshd: hostile names, links, modes and mtimes survive, byte for byte;
a second run moves nothing; --delete, excludes, dry-run and single files do what they say."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sync_helpers import file_bytes, leftovers, make_tree, snapshot, sync

from transfer.hosts import HostProfile, local_host


async def test_push_then_pull_is_byte_identical(box: HostProfile, tmp_path: Path) -> None:
    source, remote, back = tmp_path / "src", tmp_path / "remote", tmp_path / "back"
    make_tree(source)
    pushed = await sync(box, "push", source, remote)
    assert pushed.ok, pushed.problems
    assert snapshot(remote) == snapshot(source)
    assert not (tmp_path / "outside").exists()  # links were copied, never followed
    assert os.readlink(remote / "abs link") == "/etc/passwd"
    expected_files = sum(1 for v in snapshot(source).values() if v[0] != "d")
    assert pushed.files_sent == expected_files
    assert pushed.bytes_sent == file_bytes(snapshot(source))

    pulled = await sync(box, "pull", back, remote)
    assert pulled.ok, pulled.problems
    assert snapshot(back) == snapshot(source)
    assert leftovers(remote) == [] and leftovers(back) == []


async def test_second_push_moves_nothing(box: HostProfile, tmp_path: Path) -> None:
    source, remote = tmp_path / "src", tmp_path / "remote"
    make_tree(source)
    await sync(box, "push", source, remote)
    again = await sync(box, "push", source, remote)
    assert (again.files_sent, again.bytes_sent) == (0, 0)
    assert again.files_skipped == sum(1 for v in snapshot(source).values() if v[0] != "d")

    (source / "with space.txt").write_bytes(b"changed, same folder\n")
    third = await sync(box, "push", source, remote)
    assert third.files_sent == 1
    assert (remote / "with space.txt").read_bytes() == b"changed, same folder\n"


@pytest.mark.parametrize("direction", ["push", "pull"])
async def test_delete_removes_only_extraneous_entries(
    box: HostProfile, tmp_path: Path, direction: str
) -> None:
    source, dest = tmp_path / "src", tmp_path / "dest"
    (source / "keep").mkdir(parents=True)
    (source / "keep" / "a").write_bytes(b"a")
    (source / ".gitignore").write_bytes(b"*.log\n")
    (dest / "keep").mkdir(parents=True)
    (dest / "keep" / "stale").write_bytes(b"old")
    (dest / "gone" / "deeper").mkdir(parents=True)
    (dest / "gone" / "deeper" / "x").write_bytes(b"x")
    (dest / "run.log").write_bytes(b"excluded on the destination: kept")
    (dest / "logs").mkdir()
    (dest / "logs" / "train.log").write_bytes(b"inside a folder that holds excluded files")
    (dest / "logs" / "other").write_bytes(b"extraneous")

    local, remote = (source, dest) if direction == "push" else (dest, source)
    without = await sync(box, direction, local, remote)
    assert (dest / "keep" / "stale").exists() and without.deleted == 0

    result = await sync(box, direction, local, remote, delete=True)
    assert result.ok
    assert not (dest / "keep" / "stale").exists()
    assert not (dest / "gone").exists()
    assert not (dest / "logs" / "other").exists()
    assert (dest / "run.log").read_bytes().startswith(b"excluded")
    assert (dest / "logs" / "train.log").exists()
    assert (dest / "keep" / "a").read_bytes() == b"a"


async def test_excludes_from_ignore_files_and_flags(box: HostProfile, tmp_path: Path) -> None:
    source, remote = tmp_path / "src", tmp_path / "remote"
    (source / "sub" / "build").mkdir(parents=True)
    (source / "data").mkdir()
    (source / ".venv" / "lib").mkdir(parents=True)
    files = {
        ".gitignore": b"*.log\nbuild/\n.venv/\n",
        ".gputuiignore": b"data/\n",
        "sub/.gitignore": b"!keep.log\n",
        "main.py": b"print()\n",
        "train.log": b"no",
        "sub/keep.log": b"yes: re-included by the deeper .gitignore",
        "sub/other.log": b"no",
        "sub/build/out.o": b"no",
        "data/huge.bin": b"no",
        ".venv/lib/x.py": b"no",
        "notes.tmp": b"no: --exclude",
        "sub/scratch/a.tmp": b"no: --exclude",
    }
    for rel, data in files.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(data)
    result = await sync(box, "push", source, remote, excludes=("*.tmp",))
    assert result.ok
    got = {
        str(p.relative_to(remote)) for p in remote.rglob("*") if p.is_file()
    }
    assert got == {".gitignore", ".gputuiignore", "sub/.gitignore", "main.py", "sub/keep.log"}

    back = tmp_path / "back"
    (remote / "later.log").write_bytes(b"ignored by the host tree's .gitignore on pull")
    pulled = await sync(box, "pull", back, remote, excludes=("main.py",))
    got_back = {str(p.relative_to(back)) for p in back.rglob("*") if p.is_file()}
    assert pulled.ok
    assert got_back == {".gitignore", ".gputuiignore", "sub/.gitignore", "sub/keep.log"}


async def test_dry_run_changes_nothing(box: HostProfile, tmp_path: Path) -> None:
    source, remote = tmp_path / "src", tmp_path / "remote"
    make_tree(source)
    (remote / "extra").mkdir(parents=True)
    (remote / "extra" / "old").write_bytes(b"old")
    before = snapshot(remote)
    result = await sync(box, "push", source, remote, dry_run=True, delete=True)
    assert snapshot(remote) == before
    assert result.dry_run and result.files_sent == 0
    plan = result.plan
    assert plan is not None
    assert plan.files_to_send == sum(1 for v in snapshot(source).values() if v[0] != "d")
    assert plan.bytes_to_send == file_bytes(snapshot(source))
    assert plan.to_delete == 2 and plan.delete == ["extra"]
    assert "new\nline" in plan.send


async def test_single_files_in_both_directions(box: HostProfile, tmp_path: Path) -> None:
    (tmp_path / "here").mkdir()
    big = tmp_path / "here" / "-model weights.bin"
    big.write_bytes(os.urandom(300_000))
    remote = tmp_path / "remote"
    into_folder = await sync(box, "push", big, str(remote) + "/")
    assert into_folder.files_sent == 1
    assert (remote / "-model weights.bin").read_bytes() == big.read_bytes()

    renamed = await sync(box, "push", big, remote / "renamed.bin")
    assert renamed.files_sent == 1 and (remote / "renamed.bin").read_bytes() == big.read_bytes()
    assert (await sync(box, "push", big, remote / "renamed.bin")).files_skipped == 1

    pulled_dir = tmp_path / "pulled"
    pulled_dir.mkdir()
    pulled = await sync(box, "pull", pulled_dir, remote / "renamed.bin")
    assert pulled.files_sent == 1
    assert (pulled_dir / "renamed.bin").read_bytes() == big.read_bytes()
    assert leftovers(remote) == [] and leftovers(pulled_dir) == []


async def test_relative_remote_paths_are_inside_the_workdir(
    sshd_server: object, tmp_path: Path
) -> None:
    from sshd import SshServer

    assert isinstance(sshd_server, SshServer)
    sshd_server.trust()
    workdir = tmp_path / "work dir"
    host = sshd_server.profile("box", workdir=str(workdir))
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_bytes(b"print('hi')\n")
    result = await sync(host, "push", source, "project")
    assert (workdir / "project" / "train.py").read_bytes() == b"print('hi')\n"
    assert result.destination == f"box:{workdir}/project"


async def test_local_host_uses_the_same_engine(tmp_path: Path) -> None:
    source, dest = tmp_path / "src", tmp_path / "dest"
    make_tree(source)
    result = await sync(local_host(), "push", source, dest, verify=True)
    assert result.ok and result.verified > 0
    assert snapshot(dest) == snapshot(source)


async def test_a_host_without_tar_still_syncs(
    box: HostProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the listing finds no tar, every file streams on its own and links are made apart."""
    from transfer.sync import scan

    monkeypatch.setattr(scan, "TOOLS", ("sha256sum", "python3"))
    source, remote, back = tmp_path / "src", tmp_path / "remote", tmp_path / "back"
    make_tree(source)
    pushed = await sync(box, "push", source, remote, verify=True)
    assert pushed.ok and snapshot(remote) == snapshot(source)
    pulled = await sync(box, "pull", back, remote)
    assert pulled.ok and snapshot(back) == snapshot(source)
    assert leftovers(remote) == [] and leftovers(back) == []
