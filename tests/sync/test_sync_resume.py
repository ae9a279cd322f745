"""Interrupted transfers: the sshd child serving the transfer is killed mid-file, and a re-run
continues from the ``.part`` (its prefix checked by hash) and ends byte-identical. No final name
ever holds a partial file, and a source that changes mid-transfer is sent again."""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from pathlib import Path

import pytest
from sshd import SshServer
from sync_helpers import (
    SMALL_LIMIT,
    assert_nothing_partial,
    drop_connections,
    leftovers,
    snapshot,
    sync,
)

from transfer.hosts import HostProfile
from transfer.sync.errors import TransferInterrupted
from transfer.sync.events import Progress, Retrying, SyncEvent

SIZE = 4 * 1024 * 1024
RATE = 4 * 1024 * 1024


class Killer:
    """Watches ``folder`` from a thread and cuts the connections as soon as a ``.part`` there
    holds ``at_bytes``: the cut lands mid-file whatever the shell start-up costs."""

    def __init__(self, server: SshServer, folder: Path, at_bytes: int) -> None:
        self.server, self.folder, self.at_bytes = server, folder, at_bytes
        self.fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                sizes = parts_in(self.folder).values() if self.folder.exists() else []
            except FileNotFoundError:
                sizes = []
            if any(size >= self.at_bytes for size in sizes):
                drop_connections(self.server)
                self.fired = True
                return
            time.sleep(0.002)


def parts_in(folder: Path) -> dict[str, int]:
    return {p: (folder / p).stat().st_size for p in leftovers(folder)}


@pytest.mark.parametrize("fraction", [0.15, 0.45, 0.7])
async def test_push_killed_mid_file_resumes(
    box: HostProfile, sshd_server: SshServer, tmp_path: Path, fraction: float
) -> None:
    source, remote = tmp_path / "src", tmp_path / "remote"
    source.mkdir()
    data = os.urandom(SIZE)
    (source / "big.bin").write_bytes(data)
    with Killer(sshd_server, remote, int(SIZE * fraction)) as killer, pytest.raises(
        TransferInterrupted, match="run the same command again to resume"
    ):
        await sync(box, "push", source, remote, bwlimit=RATE, retries=0)
    assert killer.fired
    assert not (remote / "big.bin").exists()
    parts = parts_in(remote)
    assert len(parts) == 1
    kept = next(iter(parts.values()))
    assert SIZE * fraction <= kept < SIZE

    result = await sync(box, "push", source, remote)
    assert result.resumed_bytes == kept
    assert result.bytes_sent == SIZE - kept
    assert (remote / "big.bin").read_bytes() == data
    assert leftovers(remote) == []


@pytest.mark.parametrize("fraction", [0.2, 0.45])
async def test_pull_killed_mid_file_resumes(
    box: HostProfile, sshd_server: SshServer, tmp_path: Path, fraction: float
) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    remote.mkdir()
    data = os.urandom(SIZE)
    (remote / "ckpt.bin").write_bytes(data)
    with Killer(sshd_server, local, int(SIZE * fraction)) as killer, pytest.raises(
        TransferInterrupted
    ):
        await sync(box, "pull", local, remote, bwlimit=RATE, retries=0)
    assert killer.fired and not (local / "ckpt.bin").exists()
    parts = parts_in(local)
    assert len(parts) == 1
    kept = next(iter(parts.values()))
    assert SIZE * fraction <= kept <= SIZE

    result = await sync(box, "pull", local, remote)
    assert result.resumed_bytes == kept
    assert (local / "ckpt.bin").read_bytes() == data
    assert leftovers(local) == []


async def test_a_corrupted_part_is_not_trusted(
    box: HostProfile, sshd_server: SshServer, tmp_path: Path
) -> None:
    source, remote = tmp_path / "src", tmp_path / "remote"
    source.mkdir()
    data = os.urandom(SIZE)
    (source / "big.bin").write_bytes(data)
    with Killer(sshd_server, remote, SIZE // 2), pytest.raises(TransferInterrupted):
        await sync(box, "push", source, remote, bwlimit=RATE, retries=0)
    (part,) = leftovers(remote)
    with open(remote / part, "r+b") as f:
        f.write(b"\0garbage\0")  # the prefix no longer matches the source
    result = await sync(box, "push", source, remote)
    assert result.resumed_bytes == 0 and result.bytes_sent == SIZE
    assert (remote / "big.bin").read_bytes() == data


async def test_dropped_connection_is_retried_and_resumed(
    box: HostProfile, sshd_server: SshServer, tmp_path: Path
) -> None:
    source, remote = tmp_path / "src", tmp_path / "remote"
    source.mkdir()
    data = os.urandom(SIZE)
    (source / "big.bin").write_bytes(data)
    (source / "small.txt").write_bytes(b"small")
    events: list[SyncEvent] = []
    with Killer(sshd_server, remote, SIZE // 2) as killer:
        result = await sync(box, "push", source, remote, events.append, bwlimit=RATE, retries=2)
    assert killer.fired
    retries = [e for e in events if isinstance(e, Retrying)]
    assert len(retries) == 1 and "dropped" in retries[0].reason
    assert result.ok and result.resumed_bytes > 0
    assert snapshot(remote) == snapshot(source)


class TimedKiller:
    """Cuts the connections ``after_s`` seconds in, whatever the transfer is doing then
    (listing, unpacking a batch, streaming, renaming)."""

    def __init__(self, server: SshServer, after_s: float) -> None:
        self.server = server
        self.fired = False
        self._timer = threading.Timer(after_s, self._fire)

    def _fire(self) -> None:
        drop_connections(self.server)
        self.fired = True

    def __enter__(self) -> TimedKiller:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        self._timer.join()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [7, 11, 23])
async def test_random_kill_points_always_end_identical(
    box: HostProfile, sshd_server: SshServer, tmp_path: Path, seed: int
) -> None:
    """Several files streaming at once and a tar batch, the sshd children serving them killed at
    random points (by bytes written or by time), again and again: after every cut no final name
    holds a partial file, and the run after the last cut ends byte-identical to the source."""
    rng = random.Random(seed)
    source, remote = tmp_path / "src", tmp_path / "remote"
    (source / "sub").mkdir(parents=True)
    for index in range(3):
        (source / f"big{index}.bin").write_bytes(rng.randbytes(SIZE // 2 + index * 4099))
    for index in range(40):
        (source / "sub" / f"s{index}").write_bytes(rng.randbytes(rng.randrange(SMALL_LIMIT)))
    interrupted = 0
    for _ in range(4):
        killer: Killer | TimedKiller
        if rng.random() < 0.5:
            killer = Killer(sshd_server, remote, rng.randrange(1, SIZE // 2))
        else:
            killer = TimedKiller(sshd_server, rng.uniform(0.05, 0.6))
        try:
            with killer:
                await sync(box, "push", source, remote, bwlimit=RATE, retries=0)
        except TransferInterrupted:
            interrupted += 1
            assert killer.fired
        assert_nothing_partial(source, remote)
    assert interrupted >= 1  # the first cut always lands: it comes before the end
    result = await sync(box, "push", source, remote)
    assert result.ok
    assert snapshot(remote) == snapshot(source)
    assert leftovers(remote) == []


async def test_part_never_shows_at_the_final_name(box: HostProfile, tmp_path: Path) -> None:
    source, remote = tmp_path / "src", tmp_path / "remote"
    (source / "batch").mkdir(parents=True)
    data = os.urandom(SIZE)
    (source / "big.bin").write_bytes(data)
    for index in range(50):
        (source / "batch" / f"f{index}").write_bytes(os.urandom(20_000))
    seen: list[tuple[bool, int]] = []
    saw_part: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            final = remote / "big.bin"
            try:
                seen.append((True, final.stat().st_size))
            except FileNotFoundError:
                seen.append((False, 0))
            if remote.exists():
                saw_part.extend(p for p in leftovers(remote) if p.startswith(".big.bin."))
                for f in (remote / "batch").glob("f*") if (remote / "batch").exists() else []:
                    with contextlib.suppress(FileNotFoundError):
                        assert f.stat().st_size == 20_000, f"partial {f.name}"
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = await sync(box, "push", source, remote, bwlimit=RATE)
    finally:
        stop.set()
        watcher.join()
    assert result.ok
    assert saw_part, "the watcher never saw the transfer in progress"
    assert any(not exists for exists, _ in seen)
    assert all(size == SIZE for exists, size in seen if exists)
    assert snapshot(remote) == snapshot(source)


async def test_source_changed_mid_push_is_sent_again(box: HostProfile, tmp_path: Path) -> None:
    source, remote = tmp_path / "src", tmp_path / "remote"
    source.mkdir()
    big = source / "big.bin"
    big.write_bytes(os.urandom(SIZE))
    os.utime(big, (1_600_000_000, 1_600_000_000))
    changed: list[bool] = []

    def on_event(event: SyncEvent) -> None:
        current = event.current if isinstance(event, Progress) else None
        if not changed and current is not None and current.done >= SIZE // 2:
            changed.append(True)
            with open(big, "r+b") as f:
                f.write(b"NEW CONTENT")  # same size, new mtime

    result = await sync(box, "push", source, remote, on_event, bwlimit=RATE)
    assert changed and result.resent_changed == ["big.bin"]
    assert (remote / "big.bin").read_bytes() == big.read_bytes()
    assert (remote / "big.bin").read_bytes().startswith(b"NEW CONTENT")
    assert snapshot(remote) == snapshot(source)


async def test_source_changed_mid_pull_is_fetched_again(box: HostProfile, tmp_path: Path) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    remote.mkdir()
    big = remote / "big.bin"
    big.write_bytes(os.urandom(SIZE))
    os.utime(big, (1_600_000_000, 1_600_000_000))
    changed: list[bool] = []

    def on_event(event: SyncEvent) -> None:
        current = event.current if isinstance(event, Progress) else None
        if not changed and current is not None and current.done >= SIZE // 2:
            changed.append(True)
            with open(big, "ab") as f:
                f.write(b"appended while it was read")

    result = await sync(box, "pull", local, remote, on_event, bwlimit=RATE)
    assert changed and result.resent_changed == ["big.bin"]
    assert snapshot(local) == snapshot(remote)
