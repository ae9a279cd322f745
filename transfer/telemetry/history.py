"""The last few minutes of each GPU, bounded, for the sparklines of the GPU panel.

Points are kept as plain tuples of numbers: the garbage collector stops tracking those, so a
fleet's worth of history (20 hosts × 8 GPUs × 5 minutes at 1 Hz is 48,000 points) adds nothing
to its full collections, which would otherwise pause the UI.
"""

from __future__ import annotations

from collections import deque
from typing import Literal, NamedTuple

from trainers.protocol.gpu_sample import GpuSample, HostSample

HISTORY_WINDOW_S = 300.0
#: Enough for the window at 2 Hz; older points fall off even when samples come faster.
MAX_POINTS = 600

Metric = Literal["utilization_pct", "memory_pct", "temperature_c", "power_draw_w"]


class GpuPoint(NamedTuple):
    """One GPU at one moment, in the units the sparklines scale."""

    time: float
    utilization_pct: float | None
    memory_pct: float | None
    temperature_c: float | None
    power_draw_w: float | None


_Row = tuple[float, float | None, float | None, float | None, float | None]
_COLUMN = {name: i for i, name in enumerate(GpuPoint._fields)}


def _row(time: float, gpu: GpuSample) -> _Row:
    memory = None
    if gpu.memory_used_mib is not None and gpu.memory_total_mib:
        memory = 100.0 * gpu.memory_used_mib / gpu.memory_total_mib
    return (
        time,
        None if gpu.utilization_pct is None else float(gpu.utilization_pct),
        memory,
        None if gpu.temperature_c is None else float(gpu.temperature_c),
        gpu.power_draw_w,
    )


class GpuHistory:
    """Per-GPU points of the last ``window_s`` seconds; a GPU that changes (another uuid at the
    same index) starts over."""

    def __init__(self, window_s: float = HISTORY_WINDOW_S, max_points: int = MAX_POINTS) -> None:
        self.window_s = window_s
        self.max_points = max_points
        self._points: dict[int, deque[_Row]] = {}
        self._uuids: dict[int, str | None] = {}

    def add(self, time: float, sample: HostSample) -> None:
        for gpu in sample.gpus:
            points = self._points.get(gpu.index)
            if points is None or self._uuids.get(gpu.index) != gpu.uuid:
                points = self._points[gpu.index] = deque(maxlen=self.max_points)
                self._uuids[gpu.index] = gpu.uuid
            if points and time < points[-1][0]:
                points.clear()  # the clock went back: the old points no longer line up
            points.append(_row(time, gpu))
            while points and points[0][0] < time - self.window_s:
                points.popleft()

    def points(self, index: int) -> list[GpuPoint]:
        return [GpuPoint(*row) for row in self._points.get(index, ())]

    def resampled(self, index: int, metric: Metric, width: int, now: float) -> list[float | None]:
        """``width`` buckets covering the window up to ``now``: each the mean of its points,
        None where there was no reading."""
        if width <= 0:
            return []
        sums = [0.0] * width
        counts = [0] * width
        start = now - self.window_s
        bucket_s = self.window_s / width
        column = _COLUMN[metric]
        for row in self._points.get(index, ()):
            value, time = row[column], row[0]
            if value is None or time < start:
                continue
            bucket = min(width - 1, int((time - start) / bucket_s))
            sums[bucket] += value
            counts[bucket] += 1
        return [s / c if c else None for s, c in zip(sums, counts, strict=True)]
