"""The laptop's short list of jobs it launched, so ``gputui jobs`` knows which hosts to ask.

The truth about a job lives on its host; this index only remembers where to look. It is
``$GPUTUI_HOME/jobs.json``, written atomically, newest last, bounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from transfer.jobs.state import JobMeta
from transfer.paths import atomic_write, gputui_home

MAX_ENTRIES = 1000


@dataclass(frozen=True)
class IndexEntry:
    host: str
    id: str
    name: str
    created_at: float


def index_file() -> Path:
    return gputui_home() / "jobs.json"


def load_index() -> list[IndexEntry]:
    """Entries oldest first; an unreadable file reads as empty (it is only a hint)."""
    try:
        data = json.loads(index_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    entries = []
    for item in data.get("jobs", []) if isinstance(data, dict) else []:
        try:
            entries.append(
                IndexEntry(
                    host=str(item["host"]),
                    id=str(item["id"]),
                    name=str(item.get("name", item["id"])),
                    created_at=float(item.get("created_at", 0.0)),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return entries


def remember_job(meta: JobMeta) -> None:
    entries = [e for e in load_index() if (e.host, e.id) != (meta.host, meta.id)]
    entries.append(IndexEntry(meta.host, meta.id, meta.name, meta.created_at))
    _write(entries[-MAX_ENTRIES:])


def hosts_with_jobs() -> list[str]:
    """Host names in the order their newest job was launched, most recent last."""
    order: dict[str, float] = {}
    for entry in load_index():
        order[entry.host] = max(order.get(entry.host, 0.0), entry.created_at)
    return sorted(order, key=lambda host: order[host])


def _write(entries: list[IndexEntry]) -> None:
    path = index_file()
    text = json.dumps({"jobs": [e.__dict__ for e in entries]}, ensure_ascii=False, indent=1)
    atomic_write(path, text)
