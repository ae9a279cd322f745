"""The pull's destination writer: every write through folder descriptors, no link followed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from transfer.sync.destination import LocalTree, finish_file, pull_mode_mask
from transfer.sync.errors import LinkInTheWay
from transfer.sync.manifest import Entry

ENTRY = Entry("f", 3, 1_700_000_000, 0o644)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[LocalTree]:
    tree = LocalTree(str(tmp_path / "dest"), open_folders=4)
    tree.open()
    yield tree
    tree.close()


def write(tree: LocalTree, rel: str, data: bytes) -> None:
    part, fd = tree.new_part(rel, ENTRY)
    try:
        os.write(fd, data)
        finish_file(fd, 0o4755 & pull_mode_mask(0o022), ENTRY.mtime)
    finally:
        os.close(fd)
    tree.place(part, rel)


def test_a_link_on_the_way_to_a_folder_is_refused(tree: LocalTree, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, tmp_path / "dest" / "sub")
    with pytest.raises(LinkInTheWay, match="never writes through"):
        write(tree, "sub/x", b"abc")
    with pytest.raises(LinkInTheWay):
        tree.make_folder("sub", 0o755)
    assert list(elsewhere.iterdir()) == []


def test_a_link_at_the_final_name_is_replaced_not_followed(
    tree: LocalTree, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"mine")
    victim.chmod(0o600)
    os.symlink(victim, tmp_path / "dest" / "x")
    write(tree, "x", b"abc")
    assert (tmp_path / "dest" / "x").read_bytes() == b"abc"
    assert not (tmp_path / "dest" / "x").is_symlink()
    assert victim.read_bytes() == b"mine" and victim.stat().st_mode & 0o7777 == 0o600
    assert (tmp_path / "dest" / "x").stat().st_mode & 0o7777 == 0o755


def test_only_a_part_of_ours_is_resumed(tree: LocalTree, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    (tmp_path / "target").write_bytes(b"not ours to write")
    os.symlink(tmp_path / "target", dest / ".x.0123456789ab.0123456789abcdef.part")
    assert tree.open_part(".x.0123456789ab.0123456789abcdef.part") is None
    os.link(tmp_path / "target", dest / ".y.0123456789ab.0123456789abcdef.part")
    assert tree.open_part(".y.0123456789ab.0123456789abcdef.part") is None
    part, fd = tree.new_part("z", ENTRY)
    os.close(fd)
    again = tree.open_part(part)
    assert again is not None
    os.close(again)


def test_open_folders_stay_bounded(tree: LocalTree, tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for index in range(40):
        tree.make_folder(f"d{index}", 0o755)
        tree.make_folder(f"d{index}/e", 0o700)
        write(tree, f"d{index}/e/f", b"abc")
    assert len(os.listdir("/proc/self/fd")) <= before + 4
    assert (tmp_path / "dest" / "d39" / "e" / "f").read_bytes() == b"abc"
    assert (tmp_path / "dest" / "d7" / "e").stat().st_mode & 0o777 == 0o700
