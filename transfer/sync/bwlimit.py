"""``--bwlimit``: one token bucket shared by every stream of a transfer.

``parse_rate`` is on the command's quick path (``gputui push``), so asyncio is imported only
by the bucket itself.
"""

from __future__ import annotations

import re
import time

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)?(?:/s)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_rate(text: str) -> int:
    """``500K``, ``20M``, ``1.5MiB/s``, ``800`` (bytes per second) → bytes per second.

    Units are binary, as rsync's ``--bwlimit`` suffixes; a bare number is bytes per second.
    """
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"not a rate: {text!r} (use e.g. 500K, 20M, 1G per second)")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value < 1:
        raise ValueError(f"rate must be at least 1 byte per second: {text!r}")
    return int(value)


class TokenBucket:
    """Lets ``rate`` bytes per second through, in bursts of at most a tenth of a second."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.burst = max(rate / 10, 1.0)
        self._tokens = self.burst
        self._stamp = time.monotonic()
        import asyncio

        self._lock = asyncio.Lock()

    def chunk_size(self, default: int) -> int:
        """A write size that keeps the stream smooth under the limit."""
        return max(4096, min(default, int(self.burst)))

    async def take(self, amount: int) -> None:
        import asyncio

        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= min(amount, self.burst):
                    self._tokens -= amount  # may go negative: the debt is paid by waiting
                    return
                await asyncio.sleep((min(amount, self.burst) - self._tokens) / self.rate)
