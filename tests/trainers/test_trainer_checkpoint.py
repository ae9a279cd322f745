"""Checkpoint folders: atomic commit, crash at any point, damaged ones skipped, keep-last-K."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from trainers import checkpoint as ckpt


def writers(payload: str) -> list[ckpt.Writer]:
    def weights(folder: Path) -> Sequence[str]:
        (folder / "weights.bin").write_bytes(payload.encode() * 100)
        return ["weights.bin"]

    def two_files(folder: Path) -> Sequence[str]:
        (folder / "optimizer.bin").write_bytes(b"o" + payload.encode())
        (folder / "state.json").write_text(json.dumps({"payload": payload}))
        return ["optimizer.bin", "state.json"]

    return [weights, two_files]


def saved_payload(folder: Path) -> str:
    return str(json.loads((folder / "state.json").read_text())["payload"])


class Crash(Exception):
    pass


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A checkpoint folder of its own (tmp_path also holds the isolated gputui home)."""
    return tmp_path / "checkpoints"


def test_commit_writes_manifest_and_latest(root: Path) -> None:
    committed = ckpt.save_checkpoint(root, 5, writers("five"), 3, {"run_id": "r"})
    assert committed.path == root / "step-00000005"
    manifest = ckpt.read_manifest(committed.path)
    assert manifest["step"] == 5 and manifest["run_id"] == "r"
    assert set(manifest["files"]) == {"weights.bin", "optimizer.bin", "state.json"}
    assert manifest["files"]["weights.bin"]["size"] == 400
    assert committed.size_bytes == ckpt.folder_size(committed.path)
    assert json.loads((root / "latest").read_text()) == {"path": "step-00000005", "step": 5}
    assert ckpt.verify(committed.path) is None
    assert [p.name for p in root.iterdir() if "tmp" in p.name] == []


@pytest.mark.parametrize("files_before_crash", [0, 1, 2, 3])
def test_crash_after_each_file_keeps_previous(
    root: Path, monkeypatch: pytest.MonkeyPatch, files_before_crash: int
) -> None:
    ckpt.save_checkpoint(root, 10, writers("ten"), 3, {})
    real_commit_file = ckpt._commit_file
    real_fsync_dir = ckpt._fsync_dir
    calls = {"files": 0}

    def commit_file_then_maybe_crash(path: Path) -> dict[str, object]:
        info = real_commit_file(path)
        calls["files"] += 1
        if calls["files"] > files_before_crash:
            raise Crash(path.name)
        return info

    def fsync_dir_then_crash(path: Path) -> None:
        real_fsync_dir(path)
        if path.name.endswith(".tmp"):
            raise Crash("after the manifest, before the rename")

    monkeypatch.setattr(ckpt, "_commit_file", commit_file_then_maybe_crash)
    monkeypatch.setattr(ckpt, "_fsync_dir", fsync_dir_then_crash)
    with pytest.raises(Crash):
        ckpt.save_checkpoint(root, 20, writers("twenty"), 3, {})
    monkeypatch.undo()

    assert (root / "step-00000020.tmp").is_dir()
    found = ckpt.find_resumable(root)
    assert found == root / "step-00000010"
    assert saved_payload(found) == "ten"
    assert ckpt.remove_stale_temporaries(root) == [root / "step-00000020.tmp"]
    # The next save of that step starts clean and commits.
    ckpt.save_checkpoint(root, 20, writers("twenty"), 3, {})
    assert ckpt.find_resumable(root) == root / "step-00000020"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: (f / "manifest.json").unlink(), "no readable manifest"),
        (lambda f: (f / "manifest.json").write_text("{"), "no readable manifest"),
        (lambda f: (f / "weights.bin").unlink(), "weights.bin is missing"),
        (lambda f: (f / "weights.bin").write_bytes(b"short"), "weights.bin has 5 bytes"),
        (lambda f: (f / "weights.bin").write_bytes(b"x" * 500), "does not match its checksum"),
    ],
)
def test_damaged_newest_falls_back(root: Path, damage: object, reason: str) -> None:
    ckpt.save_checkpoint(root, 1, writers("one"), 5, {})
    ckpt.save_checkpoint(root, 2, writers("two"), 5, {})
    newest = ckpt.save_checkpoint(root, 3, writers("three"), 5, {}).path
    damage(newest)  # type: ignore[operator]
    skipped: list[tuple[str, str]] = []
    found = ckpt.find_resumable(root, lambda path, why: skipped.append((path.name, why)))
    assert found is not None and saved_payload(found) == "two"
    assert len(skipped) == 1 and skipped[0][0] == "step-00000003"
    assert reason in skipped[0][1]


def test_keep_last_k_deletes_only_after_commit(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for step in (1, 2, 3):
        ckpt.save_checkpoint(root, step, writers(str(step)), 2, {})
    assert [s for s, _ in ckpt.committed_steps(root)] == [3, 2]

    def crash(path: Path) -> dict[str, object]:
        raise Crash(path.name)

    monkeypatch.setattr(ckpt, "_commit_file", crash)
    with pytest.raises(Crash):
        ckpt.save_checkpoint(root, 4, writers("4"), 2, {})
    monkeypatch.undo()
    assert [s for s, _ in ckpt.committed_steps(root)] == [3, 2]  # nothing pruned early
    ckpt.save_checkpoint(root, 4, writers("4"), 2, {})
    assert [s for s, _ in ckpt.committed_steps(root)] == [4, 3]


def test_same_step_twice_keeps_the_committed_copy(root: Path) -> None:
    first = ckpt.save_checkpoint(root, 7, writers("first"), 3, {})
    again = ckpt.save_checkpoint(root, 7, writers("second"), 3, {})
    assert again.path == first.path and saved_payload(first.path) == "first"
    (first.path / "weights.bin").write_bytes(b"broken")
    ckpt.save_checkpoint(root, 7, writers("third"), 3, {})
    assert saved_payload(first.path) == "third"


def test_stale_temporaries_are_removed(root: Path) -> None:
    ckpt.save_checkpoint(root, 1, writers("one"), 3, {})
    (root / "step-00000002.tmp").mkdir()
    (root / ".latest.tmp-4242").write_text("{}")
    removed = sorted(p.name for p in ckpt.remove_stale_temporaries(root))
    assert removed == [".latest.tmp-4242", "step-00000002.tmp"]
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000001"]
