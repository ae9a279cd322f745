"""Memory stays bounded while streaming: a pull onto a disk slower than the network must not
pile up what the host keeps sending (it streams, it never holds a file in memory)."""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import pytest
from sync_helpers import sync

import transfer.sync.pull_stream as pull_stream
from transfer.hosts import HostProfile
from transfer.sync.remote import RECEIVE_WINDOW

SIZE = 192 * 1024 * 1024


@pytest.mark.slow
async def test_a_slow_disk_here_does_not_fill_memory(
    box: HostProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    remote.mkdir()
    block = os.urandom(1 << 20)
    with open(remote / "ckpt.bin", "wb") as f:
        for _ in range(SIZE >> 20):
            f.write(block)
    write_all = pull_stream.write_all

    def slow_disk(fd: int, chunks: Sequence[bytes]) -> None:
        time.sleep(0.03)  # a disk that takes longer than the network to take a window
        write_all(fd, list(chunks))

    monkeypatch.setattr(pull_stream, "write_all", slow_disk)
    tracemalloc.start()
    try:
        result = await sync(box, "pull", local, remote)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok and (local / "ckpt.bin").stat().st_size == SIZE
    # A few windows in flight (the channel's, the stream's, the one being written), never the
    # file: with the host allowed to run ahead this reached far beyond it.
    assert peak < 6 * RECEIVE_WINDOW, f"{peak / 2**20:.0f} MB held while pulling"
