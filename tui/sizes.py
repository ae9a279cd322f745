"""Byte counts, rates and remaining times as a person reads them (CLI and app alike)."""

from __future__ import annotations


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
