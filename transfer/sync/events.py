"""Plain event objects that a push or pull reports; the CLI prints them, the app posts them.

Progress is a snapshot, emitted at most about ten times a second whatever the number of files,
so a consumer can redraw on every one of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Direction = Literal["push", "pull"]
Phase = Literal["connecting", "scanning", "planning", "deleting", "sending", "verifying", "done"]


@dataclass(frozen=True)
class PlanSummary:
    """What a sync will do, before it does it (also the whole output of ``--dry-run``)."""

    files_to_send: int
    bytes_to_send: int
    files_to_skip: int
    bytes_to_skip: int
    to_delete: int
    resumable_bytes: int = 0
    send: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)  # entries of another kind that make way
    conflicts: list[str] = field(default_factory=list)  # left as they are (see the problems)


@dataclass(frozen=True)
class FileProgress:
    """One file (or one batch of small files) being moved right now."""

    name: str
    done: int
    size: int


@dataclass(frozen=True)
class Progress:
    """Where the whole transfer stands; ``rate`` is bytes per second over the last seconds."""

    phase: Phase
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    rate: float
    eta_s: float | None
    current: FileProgress | None = None
    active: int = 0


@dataclass(frozen=True)
class Retrying:
    """The connection dropped; the sync starts again after ``delay_s`` and resumes."""

    attempt: int
    of: int
    delay_s: float
    reason: str


@dataclass(frozen=True)
class FileProblem:
    """One file could not be moved (the rest go on); ``reason`` is one line."""

    path: str
    reason: str


@dataclass(frozen=True)
class Mismatch:
    """``--verify`` found different contents on the two ends."""

    path: str
    source_hash: str
    destination_hash: str


@dataclass(frozen=True)
class SyncResult:
    """What a finished push or pull did, for the summary line and ``--json``."""

    direction: Direction
    host: str
    source: str
    destination: str
    dry_run: bool
    files_sent: int = 0
    bytes_sent: int = 0
    files_skipped: int = 0
    bytes_skipped: int = 0
    resumed_bytes: int = 0
    deleted: int = 0
    verified: int = 0
    hash_name: str | None = None
    mismatches: list[Mismatch] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    resent_changed: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    plan: PlanSummary | None = None

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.problems

    def to_json(self) -> dict[str, object]:
        return {
            "direction": self.direction,
            "host": self.host,
            "source": self.source,
            "destination": self.destination,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "files_sent": self.files_sent,
            "bytes_sent": self.bytes_sent,
            "files_skipped": self.files_skipped,
            "bytes_skipped": self.bytes_skipped,
            "resumed_bytes": self.resumed_bytes,
            "deleted": self.deleted,
            "verified": self.verified,
            "hash": self.hash_name,
            "mismatches": [
                {"path": m.path, "source": m.source_hash, "destination": m.destination_hash}
                for m in self.mismatches
            ],
            "repaired": list(self.repaired),
            "problems": [{"path": p.path, "reason": p.reason} for p in self.problems],
            "changed_during_transfer": list(self.resent_changed),
            "elapsed_s": round(self.elapsed_s, 3),
            "plan": None
            if self.plan is None
            else {
                "files_to_send": self.plan.files_to_send,
                "bytes_to_send": self.plan.bytes_to_send,
                "files_to_skip": self.plan.files_to_skip,
                "bytes_to_skip": self.plan.bytes_to_skip,
                "to_delete": self.plan.to_delete,
                "resumable_bytes": self.plan.resumable_bytes,
                "send": list(self.plan.send),
                "delete": list(self.plan.delete),
                "replace": list(self.plan.replace),
                "conflicts": list(self.plan.conflicts),
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncResult:
        """The inverse of ``to_json`` (a result that came from the connection keeper)."""
        plan = data.get("plan")
        return cls(
            direction=data["direction"],
            host=data["host"],
            source=data["source"],
            destination=data["destination"],
            dry_run=data["dry_run"],
            files_sent=data["files_sent"],
            bytes_sent=data["bytes_sent"],
            files_skipped=data["files_skipped"],
            bytes_skipped=data["bytes_skipped"],
            resumed_bytes=data["resumed_bytes"],
            deleted=data["deleted"],
            verified=data["verified"],
            hash_name=data["hash"],
            mismatches=[Mismatch(m["path"], m["source"], m["destination"])
                        for m in data["mismatches"]],
            repaired=list(data["repaired"]),
            problems=[FileProblem(p["path"], p["reason"]) for p in data["problems"]],
            resent_changed=list(data["changed_during_transfer"]),
            elapsed_s=data["elapsed_s"],
            plan=None if plan is None else PlanSummary(**plan),
        )


@dataclass(frozen=True)
class PhaseChanged:
    phase: Phase


@dataclass(frozen=True)
class PlanReady:
    plan: PlanSummary


@dataclass(frozen=True)
class Finished:
    result: SyncResult


SyncEvent = PhaseChanged | PlanReady | Progress | Retrying | FileProblem | Finished


# The events a command-line push shows, as JSON lines from the connection keeper.
_SHOWN_EVENTS: dict[str, type[Progress | Retrying | FileProblem]] = {
    "progress": Progress,
    "retrying": Retrying,
    "file_problem": FileProblem,
}


def event_to_json(event: SyncEvent) -> dict[str, Any] | None:
    """A shown event as a JSON object; None for the others (the command does not show them)."""
    for kind, cls in _SHOWN_EVENTS.items():
        if type(event) is cls:
            return {"event": kind, **asdict(event)}
    return None


def event_from_json(data: dict[str, Any]) -> Progress | Retrying | FileProblem:
    fields = {k: v for k, v in data.items() if k != "event"}
    cls = _SHOWN_EVENTS[data["event"]]
    if cls is Progress and fields.get("current") is not None:
        fields["current"] = FileProgress(**fields["current"])
    return cls(**fields)
