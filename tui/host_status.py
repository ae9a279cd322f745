"""What the app last learned about a host, and how the host list writes it in its cells."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from tui.text import NONE, terminal_safe

State = Literal["untested", "testing", "ok", "failed", "key-unknown", "key-changed"]

UNKNOWN = NONE
REASON_WIDTH = 38


class GpuLike(Protocol):
    name: str
    memory_mib: int | None


class ReportLike(Protocol):
    """The parts of ``transfer.probe.ProbeReport`` that the list shows."""

    latency_ms: float

    @property
    def gpus(self) -> Sequence[GpuLike]: ...


@dataclass(frozen=True)
class HostStatus:
    """The outcome of the last test of one host; ``message`` is the full line for notifications."""

    state: State = "untested"
    latency_ms: float | None = None
    gpus: tuple[str, ...] | None = None
    message: str = ""

    @classmethod
    def from_report(cls, report: ReportLike) -> HostStatus:
        return cls(
            state="ok",
            latency_ms=report.latency_ms,
            gpus=tuple(_gpu_label(gpu) for gpu in report.gpus),
            message=f"reachable in {report.latency_ms:.0f} ms",
        )

    def reachability(self) -> str:
        """``✓ 12 ms``, ``✗ reason``, ``key?`` (untrusted key) or ``KEY CHANGED``."""
        if self.state == "ok" and self.latency_ms is not None:
            return f"✓ {self.latency_ms:.0f} ms"
        if self.state == "testing":
            return "testing…"
        if self.state == "key-unknown":
            return "key?"
        if self.state == "key-changed":
            return "✗ KEY CHANGED"
        if self.state == "failed":
            return "✗ " + _shorten(_reason(self.message), REASON_WIDTH)
        return UNKNOWN

    def gpu_summary(self) -> str:
        """``2× A100 (80 GiB)`` style; ``none`` when the host has none; ``—`` before a test."""
        if self.gpus is None:
            return UNKNOWN
        if not self.gpus:
            return "none"
        counts = Counter(self.gpus)
        return ", ".join(
            name if count == 1 else f"{count}× {name}" for name, count in counts.items()
        )


def _gpu_label(gpu: GpuLike) -> str:
    name = terminal_safe(gpu.name.removeprefix("NVIDIA "))
    if gpu.memory_mib and not re.search(r"\d+GB", name):  # "A100-SXM4-80GB" already says it
        return f"{name} ({round(gpu.memory_mib / 1024)} GiB)"
    return name


def _reason(message: str) -> str:
    """The cause at the end of ``cannot reach NAME (ADDR): reason``-style lines."""
    _head, sep, tail = message.rpartition(": ")
    return tail if sep and tail else message or "failed"


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
