"""Counting bytes and files as they move, and reporting at most ~10 times a second.

The rate is measured over a sliding window of the last few seconds (as rsync's progress does),
so it follows the link's real speed rather than an average since the start.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from transfer.sync.events import FileProgress, Phase, Progress, SyncEvent

EMIT_INTERVAL_S = 0.1
RATE_WINDOW_S = 3.0


@dataclass
class _Active:
    name: str
    done: int
    size: int
    started: float


class ProgressTracker:
    """Shared by every stream of one transfer; emits ``Progress`` snapshots through ``emit``."""

    def __init__(
        self,
        emit: Callable[[SyncEvent], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = EMIT_INTERVAL_S,
    ) -> None:
        self._emit = emit
        self._clock = clock
        self._interval = interval
        self._last_emit = float("-inf")
        self._samples: deque[tuple[float, int]] = deque()
        self._active: dict[int, _Active] = {}
        self._next_id = 0
        self.phase: Phase = "scanning"
        self.files_total = 0
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0

    def begin(self, files_total: int, bytes_total: int, *, keep: bool = False) -> None:
        """New totals; ``keep`` carries the counts of an earlier attempt (after a reconnect)."""
        self.files_total, self.bytes_total = files_total, bytes_total
        if not keep:
            self.files_done = self.bytes_done = 0
        self._active.clear()
        self._samples.clear()
        self.tick(force=True)

    def set_phase(self, phase: Phase) -> None:
        self.phase = phase
        self.tick(force=True)

    def start_file(self, name: str, size: int, done: int = 0) -> int:
        self._next_id += 1
        self._active[self._next_id] = _Active(name, done, size, self._clock())
        self.tick()
        return self._next_id

    def rename_file(self, token: int, name: str) -> None:
        active = self._active.get(token)
        if active is not None:
            active.name = name

    def advance(self, token: int | None, amount: int) -> None:
        """``amount`` more bytes of ``token``'s file moved."""
        self.bytes_done += amount
        if token is not None and token in self._active:
            self._active[token].done += amount
        self.tick()

    def finish_file(self, token: int | None, files: int = 1) -> None:
        self.files_done += files
        if token is not None:
            self._active.pop(token, None)
        self.tick()

    def drop_file(self, token: int | None) -> None:
        if token is not None:
            self._active.pop(token, None)

    def tick(self, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._last_emit < self._interval:
            return
        self._last_emit = now
        self._emit(self.snapshot(now))

    def snapshot(self, now: float | None = None) -> Progress:
        now = self._clock() if now is None else now
        self._samples.append((now, self.bytes_done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_S:
            self._samples.popleft()
        first_t, first_bytes = self._samples[0]
        elapsed = now - first_t
        rate = (self.bytes_done - first_bytes) / elapsed if elapsed > 0.05 else 0.0
        remaining = max(self.bytes_total - self.bytes_done, 0)
        eta = remaining / rate if rate > 0 else (0.0 if remaining == 0 else None)
        current = None
        if self._active:
            # The file that has run longest is the one a person is waiting for.
            oldest = min(self._active.values(), key=lambda a: a.started)
            current = FileProgress(oldest.name, oldest.done, oldest.size)
        return Progress(
            phase=self.phase,
            files_done=self.files_done,
            files_total=self.files_total,
            bytes_done=self.bytes_done,
            bytes_total=self.bytes_total,
            rate=rate,
            eta_s=eta,
            current=current,
            active=len(self._active),
        )
