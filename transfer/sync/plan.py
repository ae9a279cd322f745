"""Deciding what moves: rsync's quick check (size and whole-second mtime) between two manifests.

The plan also says what must go first on the destination. An entry of another kind where a
source entry belongs is replaced when that loses nothing: a link, an empty folder, a file
that a link or a file replaces. A folder that holds anything is replaced by a file only with
``--delete``, and a file by a folder likewise; a folder holding excluded entries never: those
are conflicts, reported, and nothing under them moves (rsync does the same). Extraneous
entries go only with ``--delete``, never excluded ones nor the folders that hold them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transfer.sync.events import PlanSummary
from transfer.sync.manifest import Entry, Manifest, part_prefix, prefix_of_part

PLAN_LIST_LIMIT = 1000  # names kept in a summary for --dry-run output


@dataclass
class SyncPlan:
    """Everything to do on the destination, in the order it is done."""

    delete: list[str] = field(default_factory=list)
    rmdirs: list[str] = field(default_factory=list)  # empty folders that make way
    mkdirs: list[tuple[str, int]] = field(default_factory=list)
    chmods: list[tuple[str, int]] = field(default_factory=list)
    files: list[tuple[str, Entry]] = field(default_factory=list)
    links: list[tuple[str, Entry]] = field(default_factory=list)
    skipped: list[tuple[str, Entry]] = field(default_factory=list)
    resume: dict[str, int] = field(default_factory=dict)
    resume_parts: dict[str, str] = field(default_factory=dict)  # rel → the .part to resume
    cleanup: list[str] = field(default_factory=list)  # stale temp files of ours
    stages: list[str] = field(default_factory=list)  # a push's stages left on the host
    replace: list[str] = field(default_factory=list)  # entries of another kind that make way
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (rel, reason)
    extraneous: int = 0

    @property
    def bytes_to_send(self) -> int:
        return sum(e.size for _, e in self.files)

    @property
    def nothing_to_do(self) -> bool:
        return not (
            self.delete or self.rmdirs or self.mkdirs or self.chmods or self.files or self.links
        )

    def summary(self) -> PlanSummary:
        send = [rel for rel, _ in self.files] + [rel for rel, _ in self.links]
        replaced = set(self.replace)
        return PlanSummary(
            files_to_send=len(self.files) + len(self.links),
            bytes_to_send=self.bytes_to_send,
            files_to_skip=len(self.skipped),
            bytes_to_skip=sum(e.size for _, e in self.skipped),
            to_delete=self.extraneous,
            resumable_bytes=sum(self.resume.values()),
            send=sorted(send)[:PLAN_LIST_LIMIT],
            delete=sorted(rel for rel in self.delete if rel not in replaced)[:PLAN_LIST_LIMIT],
            replace=sorted(self.replace)[:PLAN_LIST_LIMIT],
            conflicts=sorted(rel for rel, _ in self.conflicts)[:PLAN_LIST_LIMIT],
        )


def make_plan(
    source: Manifest,
    destination: Manifest,
    *,
    delete: bool,
    protected: frozenset[str] = frozenset(),
    mode_mask: int = 0o7777,
) -> SyncPlan:
    """Compare the two sides. ``protected``: destination folders holding excluded entries.
    ``mode_mask``: the source mode bits the destination keeps (see ``pull_mode_mask``)."""
    plan = SyncPlan()
    src, dst = source.entries, destination.entries
    removed: set[str] = set()  # destination folders going away (their contents go with them)
    replaced: set[str] = set()  # ... of which those replaced by a source entry of another kind
    blocked: set[str] = set()  # source paths in conflict: nothing at or under them moves
    holders: set[str] | None = None  # destination folders that hold something (when needed)

    def under_removed(rel: str) -> bool:
        return has_ancestor(rel, removed)

    for rel in sorted(src):
        if blocked and has_ancestor(rel, blocked):
            continue
        entry = src[rel]
        there = dst.get(rel)
        if there is not None and there.kind != entry.kind:
            if holders is None:
                holders = _holders(destination, protected)
            conflict = _conflict(rel, there, entry, delete=delete, protected=protected,
                                 holders=holders)
            if conflict is not None:
                plan.conflicts.append((rel, conflict))
                blocked.add(rel)
                continue
            plan.replace.append(rel)
            if there.kind == "d" and rel not in holders:
                plan.rmdirs.append(rel)
            else:
                plan.delete.append(rel)
                if there.kind == "d":
                    removed.add(rel)
                    replaced.add(rel)
            there = None
        mode = entry.mode & mode_mask
        if entry.kind == "d":
            if there is None:
                plan.mkdirs.append((rel, mode))
            elif there.mode != mode:
                plan.chmods.append((rel, mode))
        elif entry.kind == "l":
            if there is None or there.target != entry.target:
                plan.links.append((rel, entry))
            else:
                plan.skipped.append((rel, entry))
        elif there is not None and there.same_as(entry):
            plan.skipped.append((rel, entry))
            if there.mode != mode:
                plan.chmods.append((rel, mode))
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

    # A .part of the version being sent is resumed (the biggest, when there are several);
    # every other one is stale.
    wanted = {part_prefix(rel, e): rel for rel, e in plan.files} if destination.parts else {}
    for part, size in sorted(destination.parts.items(), key=lambda item: (-item[1], item[0])):
        owner = wanted.get(prefix_of_part(part))
        if owner is not None and size > 0 and owner not in plan.resume:
            plan.resume[owner] = size
            plan.resume_parts[owner] = part
        elif not under_removed(part):
            plan.cleanup.append(part)
    plan.cleanup.sort()
    plan.stages = list(destination.stages)
    # Parents before children for mkdir; deletions are top-most entries only.
    plan.delete = _top_most(plan.delete)
    return plan


_KIND_NAMES = {"f": "a file", "d": "a folder", "l": "a link"}


def _conflict(
    rel: str, there: Entry, entry: Entry, *, delete: bool, protected: frozenset[str],
    holders: set[str],
) -> str | None:
    """Why the destination entry ``there`` may not make way for ``entry``; None when it may."""
    coming = _KIND_NAMES[entry.kind]
    if there.kind == "d" and rel in protected:
        return f"a folder holding excluded files is here, the source has {coming}; excluded " \
            "files are never touched"
    if there.kind == "d" and rel in holders and not delete:
        return f"a folder with files is here, the source has {coming}; --delete replaces it"
    if there.kind == "f" and entry.kind == "d" and not delete:
        return "a file is here, the source has a folder; --delete replaces it"
    return None


def _holders(destination: Manifest, protected: frozenset[str]) -> set[str]:
    """Destination folders that hold an entry, a temp file or an excluded entry."""
    folders = {rel.rpartition("/")[0] for rel in destination.entries}
    folders.update(rel.rpartition("/")[0] for rel in destination.parts)
    folders |= protected
    return folders


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

