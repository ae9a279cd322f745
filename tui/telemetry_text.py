"""How telemetry reads on screen: N/A for what is missing, short ages, money, bars, sparklines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.text import Text

from trainers.protocol.gpu_sample import GpuSample
from tui.text import terminal_safe

NA = "N/A"
_EIGHTHS = " ▏▎▍▌▋▊▉"
_SPARKS = "▁▂▃▄▅▆▇█"


def na(value: object, unit: str = "", spec: str = "") -> str:
    """``value`` with its unit, or N/A."""
    return NA if value is None else f"{value:{spec}}{unit}"


def age(seconds: float) -> str:
    """``4s``, ``2m13s``, ``1h02m``, ``3d04h``."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def usd(amount: float | None) -> str:
    if amount is None:
        return NA
    return f"${amount:,.0f}" if amount >= 1000 else f"${amount:,.2f}"


def gib(mib: int | None) -> str:
    return NA if mib is None else f"{mib / 1024:.1f}"


def size(mib: int | None) -> str:
    if mib is None:
        return NA
    if mib >= 1024 * 1024:
        return f"{mib / 1024 / 1024:.1f}T"
    if mib >= 1024:
        return f"{mib / 1024:.1f}G"
    return f"{mib}M"


def rate(bps: float | None) -> str:
    if bps is None:
        return NA
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.1f}{unit}"
    return f"{bps:.0f}B/s"


def short_name(name: str | None) -> str:
    """A GPU name without its maker's prefix, control characters escaped (the host sent it)."""
    return NA if not name else terminal_safe(name.removeprefix("NVIDIA ").removeprefix("GeForce "))


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
