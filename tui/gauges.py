"""How telemetry draws: bars filled in eighths of a cell, sparklines, colours by level.

The words and numbers around them (N/A, ages, money) are ``tui.text``'s."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.text import Text

from trainers.protocol.gpu_sample import GpuSample
from tui.text import short_name

_EIGHTHS = " ▏▎▍▌▋▊▉"
_SPARKS = "▁▂▃▄▅▆▇█"


def gpu_summary(gpus: Sequence[GpuSample]) -> str:
    """``2× A100-SXM4-80GB``; mixed cards are listed each with its count."""
    counts = Counter(short_name(gpu.name) for gpu in gpus)
    return ", ".join(f"{count}× {name}" for name, count in counts.items())


def bar(percent: float | None, width: int, style: str) -> Text:
    """A bar ``width`` cells wide, filled to ``percent`` in eighths of a cell."""
    text = Text()
    if width <= 0:
        return text
    if percent is None:
        return text.append("·" * width, style="dim")
    filled = max(0.0, min(100.0, percent)) / 100.0 * width
    full = int(filled)
    part = _EIGHTHS[int((filled - full) * 8)] if full < width else ""
    text.append("█" * full + part.strip(), style=style)
    text.append("░" * (width - full - len(part.strip())), style="dim")
    return text


def sparkline(values: Sequence[float | None], top: float, style: str) -> Text:
    """One cell per value, scaled to ``top``; a gap where there was no reading."""
    cells = []
    for value in values:
        if value is None or top <= 0:
            cells.append(" ")
        else:
            level = max(0.0, min(1.0, value / top))
            cells.append(_SPARKS[min(len(_SPARKS) - 1, int(level * (len(_SPARKS) - 1) + 0.5))])
    return Text("".join(cells), style=style)


def level_style(percent: float | None) -> str:
    """Green, yellow, red as a bar fills, as nvitop colours load."""
    if percent is None:
        return "dim"
    if percent >= 80:
        return "red"
    if percent >= 50:
        return "yellow"
    return "green"


def temperature_style(celsius: int | None) -> str:
    if celsius is None:
        return "dim"
    if celsius >= 85:
        return "bold red"
    if celsius >= 75:
        return "yellow"
    return ""
