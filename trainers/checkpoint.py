"""Atomic checkpoint folders: a half-written checkpoint is never mistaken for a good one.

A checkpoint for step N is written into ``step-0000000N.tmp`` next to its final place (same
filesystem, so the rename cannot fail with EXDEV), each file is fsynced, then ``manifest.json``
(every file's size and sha256, and the step) is written last and fsynced, and only then is the
folder renamed to ``step-0000000N`` and the parent fsynced. ``latest`` names the newest committed
folder; it is a hint for people, the resume logic does not trust it.

Resume takes the newest folder whose manifest matches its files and falls back past damaged
ones. Old checkpoints are deleted only after a new one is committed, keeping the last K.
Temporaries left by a crash are removed when a run starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
LATEST = "latest"
FORMAT = "gputui-checkpoint-1"
_NAME = re.compile(r"^step-(\d{8,})$")

Writer = Callable[[Path], Sequence[str]]
"""Writes one or more files into the given folder and returns their names."""


@dataclass(frozen=True)
class Committed:
    path: Path
    step: int
    size_bytes: int
    seconds: float


def step_folder_name(step: int) -> str:
    return f"step-{step:08d}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _commit_file(path: Path) -> dict[str, Any]:
    """Flush one written file to disk and describe it for the manifest."""
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())
    return {"size": path.stat().st_size, "sha256": _sha256(path)}


def write_json_durably(path: Path, data: Any) -> None:
    """Replace a small JSON file atomically (temp file, fsync, rename, fsync the folder)."""
    scratch = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with scratch.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(scratch, path)
    _fsync_dir(path.parent)


def save_checkpoint(
    root: Path, step: int, writers: Sequence[Writer], keep_last: int, extra: dict[str, Any]
) -> Committed:
    """Write and commit a checkpoint for ``step``, then prune to the newest ``keep_last``.

    Each writer puts its files into the temporary folder; ``extra`` goes into the manifest.
    """
    started = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_folder_name(step)
    if final.exists():
        if verify(final) is None:
            # Saving the same step twice writes the same state: keep the committed copy.
            return Committed(final, step, folder_size(final), time.monotonic() - started)
        shutil.rmtree(final)
    scratch = root / f"{final.name}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    files: dict[str, dict[str, Any]] = {}
    for write in writers:
        for name in write(scratch):
            files[name] = _commit_file(scratch / name)
    manifest = {"format": FORMAT, "step": step, "files": files, **extra}
    with (scratch / MANIFEST).open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(scratch)
    os.replace(scratch, final)
    _fsync_dir(root)
    write_json_durably(root / LATEST, {"step": step, "path": final.name})
    prune(root, keep_last)
    size = sum(info["size"] for info in files.values()) + (final / MANIFEST).stat().st_size
    return Committed(final, step, size, time.monotonic() - started)


def committed_steps(root: Path) -> list[tuple[int, Path]]:
    """Committed-looking checkpoint folders, newest first (not yet verified)."""
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = _NAME.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found, reverse=True)


def verify(folder: Path, deep: bool = True) -> str | None:
    """Why a checkpoint folder cannot be used, or None when its files match its manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no readable manifest"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return "manifest of an unknown format"
    for name, info in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != info["size"]:
            return f"{name} has {path.stat().st_size} bytes, the manifest says {info['size']}"
        if deep and _sha256(path) != info["sha256"]:
            return f"{name} does not match its checksum"
    return None


def find_resumable(root: Path, on_skip: Callable[[Path, str], None] | None = None) -> Path | None:
    """The newest checkpoint that verifies; damaged ones are reported through ``on_skip``."""
    for _, folder in committed_steps(root):
        problem = verify(folder)
        if problem is None:
            return folder
        if on_skip is not None:
            on_skip(folder, problem)
    return None


def read_manifest(folder: Path) -> dict[str, Any]:
    data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def prune(root: Path, keep_last: int) -> list[Path]:
    """Delete committed checkpoints beyond the newest ``keep_last``."""
    removed = []
    for _, folder in committed_steps(root)[keep_last:]:
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def remove_stale_temporaries(root: Path) -> list[Path]:
    """Remove folders and files that a crashed save left behind (``*.tmp`` and ``.*.tmp-*``)."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for entry in root.iterdir():
        if entry.name.endswith(".tmp") or ".tmp-" in entry.name:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
