"""When each host was first seen up, remembered across restarts of the app.

The cost of a host runs from the first sample gputui received from it, not from the moment the
app started: ``$GPUTUI_HOME/uptime.json`` keeps, per host, when it was first and last seen up.
A host not seen for ``GAP_S`` is taken to have been stopped in between (a rented machine that was
released and rented again), so its next sample starts a new up period.

The ledger itself is plain data; ``load`` and ``save`` touch the disk and belong in a thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from transfer.paths import atomic_write, gputui_home

GAP_S = 3600.0
#: ``last_seen`` moves at most this often, so that saving stays rare.
TOUCH_EVERY_S = 60.0


def ledger_path() -> Path:
    return gputui_home() / "uptime.json"


@dataclass
class UpPeriod:
    first_seen: float
    last_seen: float


@dataclass
class UptimeLedger:
    """First and last time each host was seen up; ``dirty`` until saved."""

    periods: dict[str, UpPeriod] = field(default_factory=dict)
    gap_s: float = GAP_S
    dirty: bool = False

    def seen(self, host: str, now: float) -> float:
        """Record a good sample of ``host`` at ``now``; returns when its up period began."""
        period = self.periods.get(host)
        if period is None or now - period.last_seen > self.gap_s or now < period.first_seen:
            self.periods[host] = UpPeriod(now, now)
            self.dirty = True
            return now
        if now - period.last_seen >= TOUCH_EVERY_S:
            period.last_seen = now
            self.dirty = True
        return period.first_seen

    def merge(self, older: UptimeLedger) -> None:
        """Take in what the file said (read after samples may already have arrived): a period
        that ran on into one begun here is the same period."""
        for host, old in older.periods.items():
            period = self.periods.get(host)
            if period is None:
                self.periods[host] = UpPeriod(old.first_seen, old.last_seen)
            elif period.first_seen - old.last_seen <= self.gap_s:
                period.first_seen = min(period.first_seen, old.first_seen)
                self.dirty = True

    def first_seen(self, host: str) -> float | None:
        period = self.periods.get(host)
        return period.first_seen if period else None

    def to_json(self) -> str:
        hosts = {
            name: {"first_seen": p.first_seen, "last_seen": p.last_seen}
            for name, p in sorted(self.periods.items())
        }
        return json.dumps({"hosts": hosts}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> UptimeLedger:
        """A ledger from the file's text; anything unreadable is dropped, never fatal."""
        ledger = cls()
        try:
            hosts = json.loads(text).get("hosts", {})
        except (ValueError, AttributeError):
            return ledger
        if not isinstance(hosts, dict):
            return ledger
        for name, entry in hosts.items():
            try:
                ledger.periods[str(name)] = UpPeriod(
                    float(entry["first_seen"]), float(entry["last_seen"])
                )
            except (KeyError, TypeError, ValueError):
                continue
        return ledger


def load(path: Path | None = None) -> UptimeLedger:
    try:
        return UptimeLedger.from_json((path or ledger_path()).read_text(encoding="utf-8"))
    except OSError:
        return UptimeLedger()


def save(ledger: UptimeLedger, path: Path | None = None) -> None:
    """Write the ledger; it is clean afterwards."""
    write(ledger.to_json(), path)
    ledger.dirty = False


def write(text: str, path: Path | None = None) -> None:
    """Write a ledger's text atomically (temp file, then rename). The app takes the text on its
    own thread and writes it from a worker, so the ledger never changes under the writer."""
    path = path or ledger_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, text)
