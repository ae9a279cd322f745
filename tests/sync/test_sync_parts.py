"""The pieces of the sync engine on their own: the host listing (find and its python3
fallback), the tar writer (read back by GNU tar and by tarfile), excludes, the plan, rates,
progress and hash parsing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from sync_helpers import HOSTILE_NAMES, make_tree, snapshot

from transfer.sync.bwlimit import parse_rate
from transfer.sync.events import Progress, SyncEvent
from transfer.sync.excludes import ExcludeRules
from transfer.sync.manifest import Entry, Manifest, part_name
from transfer.sync.plan import make_plan
from transfer.sync.progress import ProgressTracker
from transfer.sync.scan import (
    _PYTHON_SCAN,
    ScanTarget,
    parse_remote_scan,
    remote_scan_command,
    scan_local,
)
from transfer.sync.tarstream import END, QueueReader, member, padding
from transfer.sync.verify import parse_files_hashes


def host_scan(root: Path, env: dict[str, str] | None = None) -> Manifest:
    script = remote_scan_command(ScanTarget(str(root)))
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True, env=env).stdout
    return parse_remote_scan(out, "test")


def test_host_scan_matches_the_local_scan(tmp_path: Path) -> None:
    make_tree(tmp_path / "t")
    remote = host_scan(tmp_path / "t")
    local = scan_local(ScanTarget(str(tmp_path / "t")))
    assert remote.root_kind == "d" and remote.root == str(tmp_path / "t")
    assert remote.entries == local.entries
    assert "new\nline" in remote.entries and remote.entries["a b/link out"].kind == "l"
    assert {"sha256sum", "tar"} <= remote.tools


def test_python_fallback_lists_the_same_records(tmp_path: Path) -> None:
    make_tree(tmp_path / "t")
    by_find = host_scan(tmp_path / "t")
    out = subprocess.run(
        [sys.executable, "-c", _PYTHON_SCAN, str(tmp_path / "t")], capture_output=True, check=True
    ).stdout
    header = b"gputui-scan\0 tar\0d\0" + os.fsencode(str(tmp_path / "t")) + b"\0"
    assert parse_remote_scan(header + out, "test").entries == by_find.entries


def test_scan_of_missing_and_home_relative_roots(tmp_path: Path) -> None:
    assert host_scan(tmp_path / "nothing").root_kind == "missing"
    home = {**os.environ, "HOME": str(tmp_path)}
    (tmp_path / "work" / "proj").mkdir(parents=True)
    script = remote_scan_command(ScanTarget("proj", base="~/work"))
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True, env=home).stdout
    assert parse_remote_scan(out, "test").root == f"{tmp_path}/work/proj"


def test_our_temp_files_are_set_aside(tmp_path: Path) -> None:
    entry = Entry("f", 10, 1_700_000_000, 0o644)
    part = part_name("sub/model.bin", entry)
    assert part.startswith("sub/.model.bin.") and part.endswith(".part")
    manifest = Manifest("d")
    manifest.add("sub/model.bin", entry)
    manifest.add(part, Entry("f", 4, 1, 0o600))
    manifest.add(".gputui-stage.0123456789ab.part", Entry("d", 0, 1, 0o755))
    manifest.add(".gputui-stage.0123456789ab.part/x", Entry("f", 1, 1, 0o644))
    assert list(manifest.entries) == ["sub/model.bin"]
    assert manifest.parts == {part: 4}
    assert manifest.stages == [".gputui-stage.0123456789ab.part"]
    longest = part_name("y" * 250, entry)
    assert len(os.fsencode(longest)) <= 255
    assert part_name("sub/model.bin", entry) != part  # a random token: unpredictable
    lookalikes = Manifest("d")
    for rel in (".x.0123456789ab.part", "x.part", ".x.part"):
        lookalikes.add(rel, Entry("f", 1, 1, 0o644))
    assert len(lookalikes.entries) == 3 and not lookalikes.parts


def test_tar_stream_unpacks_with_gnu_tar_and_tarfile(tmp_path: Path) -> None:
    names = [*HOSTILE_NAMES, "dir/" + "z" * 150, "ünï/" + "数" * 60]
    stream = io.BytesIO()
    for index, name in enumerate(names):
        data = f"{index}".encode() * (index + 1)
        stream.write(member(os.fsencode(name), len(data), 0o640, 1_600_000_000 + index))
        stream.write(data + padding(len(data)))
    stream.write(member(b"long-link", 0, 0o777, 1, kind=b"2", link=b"t" * 300))
    stream.write(END)
    out = tmp_path / "out"
    out.mkdir()
    for name in names:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["tar", "-x", "-p", "--no-same-owner", "-f", "-", "-C", str(out)],
        input=stream.getvalue(),
        check=True,
    )
    for index, name in enumerate(names):
        path = out / name
        assert path.read_bytes() == f"{index}".encode() * (index + 1)
        assert path.stat().st_mtime == 1_600_000_000 + index
        assert path.stat().st_mode & 0o777 == 0o640
    assert os.readlink(out / "long-link") == "t" * 300
    with tarfile.open(fileobj=io.BytesIO(stream.getvalue()), mode="r|") as archive:
        assert [m.name for m in archive][: len(names)] == names


def test_large_and_negative_numbers_use_base_256() -> None:
    header = member(b"x", 9 * 1024**3, 0o644, -5)
    info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
    assert (info.size, info.mtime) == (9 * 1024**3, -5)


def test_excludes_follow_gitignore_rules(tmp_path: Path) -> None:
    rules = ExcludeRules.from_patterns(["*.tmp", "/top-only"])
    rules.add_file("", "*.log\nbuild/\n# comment\n")
    rules.add_file("sub", "!keep.log\n/local.txt\n")
    assert rules.excluded("a.log", False) and rules.excluded("deep/b.log", False)
    assert not rules.excluded("sub/keep.log", False)
    assert rules.excluded("sub/other.log", False)
    assert rules.excluded("build", True) and not rules.excluded("build", False)
    assert rules.excluded("sub/local.txt", False) and not rules.excluded("local.txt", False)
    assert rules.excluded("x/y.tmp", False)
    assert rules.excluded("top-only", False) and not rules.excluded("sub/top-only", False)
    assert not ExcludeRules.from_patterns([]).excluded("anything", False)


def test_the_plan_uses_the_quick_check() -> None:
    def tree(entries: dict[str, Entry]) -> Manifest:
        manifest = Manifest("d")
        for rel, entry in entries.items():
            manifest.add(rel, entry)
        return manifest

    f = Entry("f", 5, 100, 0o644)
    source = tree({
        "same": f,
        "newer": Entry("f", 5, 101, 0o644),
        "bigger": Entry("f", 6, 100, 0o644),
        "mode": Entry("f", 5, 100, 0o600),
        "was-dir": f,
        "dir": Entry("d", 0, 1, 0o755),
        "dir/new": f,
        "link": Entry("l", 0, 1, 0o777, "same"),
    })
    old = Entry("f", 5, 100, 0o644)
    destination = tree({
        "same": old, "newer": old, "bigger": old, "mode": old,
        "was-dir": Entry("d", 0, 1, 0o755), "was-dir/inner": old,
        "dir": Entry("d", 0, 1, 0o700),
        "link": Entry("l", 0, 1, 0o777, "other"),
        "extra": old, "extra-dir": Entry("d", 0, 1, 0o755), "extra-dir/x": old,
    })
    source.entries["was-empty"] = f
    destination.entries["was-empty"] = Entry("d", 0, 1, 0o755)
    plan = make_plan(source, destination, delete=False)
    assert sorted(r for r, _ in plan.files) == ["bigger", "dir/new", "newer", "was-empty"]
    assert sorted(r for r, _ in plan.skipped) == ["mode", "same"]
    assert ("mode", 0o600) in plan.chmods and ("dir", 0o755) in plan.chmods
    assert [r for r, _ in plan.links] == ["link"]
    # A folder with files is not replaced without --delete; an empty one makes way.
    assert plan.delete == [] and plan.rmdirs == ["was-empty"] and plan.replace == ["was-empty"]
    assert [rel for rel, _ in plan.conflicts] == ["was-dir"]
    with_delete = make_plan(source, destination, delete=True)
    assert with_delete.delete == ["extra", "extra-dir", "was-dir"]
    assert with_delete.extraneous == 3 and not with_delete.conflicts
    kept = make_plan(source, destination, delete=True, protected=frozenset({"extra-dir"}))
    assert kept.delete == ["extra", "extra-dir/x", "was-dir"]
    excluded_inside = make_plan(
        source, destination, delete=True, protected=frozenset({"was-dir"})
    )
    assert [rel for rel, _ in excluded_inside.conflicts] == ["was-dir"]
    masked = make_plan(source, destination, delete=False, mode_mask=0o755)
    assert ("dir", 0o755) in masked.chmods and ("mode", 0o600) in masked.chmods
    assert not make_plan(
        tree({"s": Entry("f", 5, 100, 0o4755)}), tree({"s": Entry("f", 5, 100, 0o755)}),
        delete=False, mode_mask=0o755,
    ).chmods


def test_resume_and_cleanup_of_parts() -> None:
    entry = Entry("f", 100, 7, 0o644)
    source = Manifest("d", entries={"m.bin": entry})
    destination = Manifest("d")
    resumable, smaller = part_name("m.bin", entry), part_name("m.bin", entry)
    stale = part_name("m.bin", Entry("f", 99, 7, 0o644))
    destination.add(resumable, Entry("f", 40, 1, 0o600))
    destination.add(smaller, Entry("f", 10, 1, 0o600))
    destination.add(stale, Entry("f", 30, 1, 0o600))
    plan = make_plan(source, destination, delete=False)
    assert plan.resume == {"m.bin": 40} and plan.resume_parts == {"m.bin": resumable}
    assert plan.cleanup == sorted([smaller, stale])


@pytest.mark.parametrize(
    ("text", "rate"),
    [("800", 800), ("500K", 512_000), ("20M", 20 * 2**20), ("1.5MiB/s", 3 * 2**19), ("1g", 2**30)],
)
def test_rates(text: str, rate: int) -> None:
    assert parse_rate(text) == rate


def test_bad_rate() -> None:
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate("fast")


def test_progress_is_throttled_and_measures_a_sliding_rate() -> None:
    now = [0.0]
    events: list[SyncEvent] = []
    tracker = ProgressTracker(events.append, clock=lambda: now[0])
    tracker.phase = "sending"
    tracker.begin(10, 10_000_000)
    token = tracker.start_file("big.bin", 10_000_000)
    for _ in range(100):  # 100 updates within 50 ms: one snapshot at most
        now[0] += 0.0005
        tracker.advance(token, 1000)
    assert len(events) == 1
    for _ in range(40):  # then 100 kB every 0.11 s for 4.4 s
        now[0] += 0.11
        tracker.advance(token, 100_000)
    last = events[-1]
    assert isinstance(last, Progress)
    assert last.rate == pytest.approx(100_000 / 0.11, rel=0.01)
    assert last.current is not None and last.current.name == "big.bin"
    assert last.eta_s == pytest.approx((10_000_000 - last.bytes_done) / last.rate)
    assert len(events) == 41


def test_hash_lines_with_escaped_names() -> None:
    output = (
        b"aa  ./plain\n"
        b"\\bb  ./new\\nline\n"
        b"\\cc  ./back\\\\slash\n"
    )
    assert parse_files_hashes(output, [], by_name=True) == {
        "plain": "aa", "new\nline": "bb", "back\\slash": "cc"
    }
    assert parse_files_hashes(b"aa\n-\n", ["x", "y"], by_name=False) == {"x": "aa"}


def test_local_scan_skips_excluded_folders_without_entering(tmp_path: Path) -> None:
    make_tree(tmp_path / "t")
    (tmp_path / "t" / ".gitignore").write_text("a b/\n")
    locked = tmp_path / "t" / "a b" / "ünï"
    locked.chmod(0)  # never read: the folder above it is excluded
    try:
        rules = ExcludeRules.from_patterns([])
        manifest = scan_local(ScanTarget(str(tmp_path / "t")), rules)
    finally:
        locked.chmod(0o755)
    assert not any(rel.startswith("a b") for rel in manifest.entries)
    assert "with space.txt" in manifest.entries
    assert snapshot(tmp_path / "t")  # the tree itself is untouched


def test_an_abandoned_stream_frees_both_sides() -> None:
    """After ``abandon`` a reader waiting for data and a feeder waiting for room both return,
    so a cancelled pull never leaves a worker thread blocked (the event loop's close waits for
    its threads)."""
    waiting_reader = QueueReader(maxsize=1)
    reading = threading.Thread(target=waiting_reader.read, args=(10,))
    full = QueueReader(maxsize=1)
    full.feed(b"x")
    feeding = threading.Thread(target=full.feed, args=(b"more",))
    reading.start()
    feeding.start()
    time.sleep(0.3)
    assert reading.is_alive() and feeding.is_alive()
    waiting_reader.abandon()
    full.abandon()
    reading.join(timeout=2)
    feeding.join(timeout=2)
    assert not reading.is_alive() and not feeding.is_alive()
