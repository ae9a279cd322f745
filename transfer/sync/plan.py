"""Deciding what moves: rsync's quick check (size and whole-second mtime) between two manifests.

The plan also says what must go first on the destination: an entry of the wrong kind where a
source entry belongs (a file where a folder comes, a link where a file comes) is removed even
without ``--delete``, as rsync does; extraneous entries only with ``--delete``, never excluded
ones nor the folders that hold them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transfer.sync.events import PlanSummary
from transfer.sync.manifest import Entry, Manifest, part_name

PLAN_LIST_LIMIT = 1000  # names kept in a summary for --dry-run output


@dataclass
class SyncPlan:
    """Everything to do on the destination, in the order it is done."""

    delete: list[str] = field(default_factory=list)
    mkdirs: list[tuple[str, int]] = field(default_factory=list)
    chmods: list[tuple[str, int]] = field(default_factory=list)
    files: list[tuple[str, Entry]] = field(default_factory=list)
    links: list[tuple[str, Entry]] = field(default_factory=list)
    skipped: list[tuple[str, Entry]] = field(default_factory=list)
    resume: dict[str, int] = field(default_factory=dict)
    cleanup: list[str] = field(default_factory=list)  # stale temp files and stages of ours
    extraneous: int = 0

    @property
    def bytes_to_send(self) -> int:
        return sum(e.size for _, e in self.files)

    @property
    def nothing_to_do(self) -> bool:
        return not (self.delete or self.mkdirs or self.chmods or self.files or self.links)

    def summary(self) -> PlanSummary:
        send = [rel for rel, _ in self.files] + [rel for rel, _ in self.links]
        return PlanSummary(
            files_to_send=len(self.files) + len(self.links),
            bytes_to_send=self.bytes_to_send,
            files_to_skip=len(self.skipped),
            bytes_to_skip=sum(e.size for _, e in self.skipped),
            to_delete=self.extraneous,
            resumable_bytes=sum(self.resume.values()),
            send=sorted(send)[:PLAN_LIST_LIMIT],
            delete=sorted(self.delete)[:PLAN_LIST_LIMIT],
        )


def make_plan(
    source: Manifest,
    destination: Manifest,
    *,
    delete: bool,
    protected: frozenset[str] = frozenset(),
) -> SyncPlan:
    """Compare the two sides. ``protected``: destination folders holding excluded entries."""
    plan = SyncPlan()
    src, dst = source.entries, destination.entries
    removed: set[str] = set()  # destination folders going away (their contents go with them)
    replaced: set[str] = set()  # ... of which those replaced by a source entry of another kind

    def under_removed(rel: str) -> bool:
        return has_ancestor(rel, removed)

    for rel in sorted(src):
        entry = src[rel]
        there = dst.get(rel)
        if there is not None and there.kind != entry.kind:
            plan.delete.append(rel)
            if there.kind == "d":
                removed.add(rel)
                replaced.add(rel)
            there = None
        if entry.kind == "d":
            if there is None:
                plan.mkdirs.append((rel, entry.mode))
            elif there.mode != entry.mode:
                plan.chmods.append((rel, entry.mode))
        elif entry.kind == "l":
            if there is None or there.target != entry.target:
                plan.links.append((rel, entry))
            else:
                plan.skipped.append((rel, entry))
        elif there is not None and there.same_as(entry):
            plan.skipped.append((rel, entry))
            if there.mode != entry.mode:
                plan.chmods.append((rel, entry.mode))
        else:
            plan.files.append((rel, entry))

    if delete:
        for rel in sorted(dst):
            if rel in src or has_ancestor(rel, replaced):
                continue
            plan.extraneous += 1  # counted one by one, as rsync reports deletions
            if under_removed(rel):
                continue
            if dst[rel].kind == "d" and rel in protected:
                continue  # keep the folder (it holds excluded entries); its other children go
            plan.delete.append(rel)
            if dst[rel].kind == "d":
                removed.add(rel)

    wanted = {part_name(rel, e): rel for rel, e in plan.files} if destination.parts else {}
    for part, size in destination.parts.items():
        owner = wanted.get(part)
        if owner is not None and size > 0:
            plan.resume[owner] = size
        elif owner is None and not under_removed(part):
            plan.cleanup.append(part)
    plan.cleanup.extend(destination.stages)
    # Parents before children for mkdir; deletions are top-most entries only.
    plan.delete = _top_most(plan.delete)
    return plan


def has_ancestor(rel: str, folders: set[str]) -> bool:
    """True when a folder of ``folders`` contains ``rel`` (at any depth)."""
    if not folders:
        return False
    at = rel.find("/")
    while at != -1:
        if rel[:at] in folders:
            return True
        at = rel.find("/", at + 1)
    return False


def _top_most(paths: list[str]) -> list[str]:
    chosen = set(paths)
    return [rel for rel in sorted(chosen) if not has_ancestor(rel, chosen)]

