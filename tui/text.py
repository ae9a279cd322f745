"""How the app and the CLI write things: one home for every text rule.

Missing values (``N/A`` in the telemetry views, ``—`` in tables), durations, money, sizes and rates,
and text that came from a host made safe for a terminal.

A host is untrusted: a job name, a file name, an error line or a GPU name may carry escape
sequences (an OSC 52 clipboard write, a screen clear, the one-byte C1 CSI U+009B). Everything a
host sent is passed through :func:`terminal_safe` (or :func:`one_line`) before the CLI or the app
shows it, and never through rich markup.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls. Newline and tab are kept only where a caller allows them.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LAYOUT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\x1b"}.get(
        char, f"\\x{ord(char):02x}"
    )


def terminal_safe(text: str, *, keep_layout: bool = False) -> str:
    """``text`` with every control character shown escaped (``\\x1b``, ``\\x9b``, ``\\n``…).

    ``keep_layout`` keeps newlines and tabs (a block of log or error lines). Undecodable bytes
    that came through as surrogates are shown escaped too.
    """
    pattern = _CONTROL_BUT_LAYOUT if keep_layout else _CONTROL
    safe = pattern.sub(_escaped, text)
    if any("\udc80" <= c <= "\udcff" for c in safe):
        safe = "".join(
            f"\\x{ord(c) - 0xDC00:02x}" if "\udc80" <= c <= "\udcff" else c for c in safe
        )
    return safe


def one_line(text: str, limit: int = 40) -> str:
    """A name as one line: control characters shown escaped, long names shortened with ``…``."""
    shown = terminal_safe(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


#: A reading the host did not give (telemetry views).
NA = "N/A"
#: An empty cell of a table (no exit code yet, no rate, no cost).
NONE = "—"


def na(value: object, unit: str = "", spec: str = "") -> str:
    """``value`` with its unit, or N/A."""
    return NA if value is None else f"{value:{spec}}{unit}"


def duration(seconds: float, *, days: bool = True) -> str:
    """``4s``, ``2m13s``, ``1h02m``, ``3d04h`` (``days=False``: ``74h04m``)."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400 or not days:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def clock(seconds: float | None) -> str:
    """``1:02:03`` (hours, minutes, seconds), or ``—`` when unknown."""
    if seconds is None:
        return NONE
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def usd(amount: float | None) -> str:
    """``$1.29``, ``$1,234`` (whole dollars from a thousand on), or N/A."""
    if amount is None:
        return NA
    return f"${amount:,.0f}" if amount >= 1000 else f"${amount:,.2f}"


def cents(amount: float | None) -> str:
    """A job's cost in a table: ``$1,234.56``, or ``—`` when unknown."""
    return NONE if amount is None else f"${amount:,.2f}"


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


def human_bytes(amount: float) -> str:
    """Decimal units, as rsync and most tools print: ``1.5 GB``, ``820 B``."""
    value = float(amount)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def human_eta(seconds: float | None) -> str:
    """``ETA 1:02:03``, ``ETA 4:05``, or ``ETA --:--`` while the rate is unknown."""
    if seconds is None:
        return "ETA --:--"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}" if hours else f"ETA {minutes}:{secs:02d}"


def short_name(name: str | None) -> str:
    """A GPU name without its maker's prefix, control characters escaped (the host sent it)."""
    return NA if not name else terminal_safe(name.removeprefix("NVIDIA ").removeprefix("GeForce "))
