"""Where a sync's two roots are: one listing of each side, and what a single file maps to.

A folder is mirrored into a folder; a single file goes into a destination folder (an existing
one, or a path ending in ``/``) or onto the destination path itself. A pull honours the host
tree's ignore files, read in one command.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import shlex
from dataclasses import dataclass

from transfer.link import Link
from transfer.sync.context import BATCH_MIN_FILES
from transfer.sync.errors import SyncUsageError, failure_from_stderr
from transfer.sync.excludes import IGNORE_FILES, ExcludeRules
from transfer.sync.manifest import MAX_NAME_IN_PART, PART_SUFFIX, Manifest
from transfer.sync.remote import RemoteShell
from transfer.sync.scan import (
    ScanTarget,
    filter_manifest,
    fnmatch_escape,
    local_root_kind,
    parse_remote_scan,
    remote_scan_command,
    scan_local,
)


@dataclass
class Layout:
    """Where both roots are, and (for one file) the name on each side."""

    local_root: str
    remote_root: str
    source: Manifest
    destination: Manifest
    source_names: dict[str, str]
    single: bool


class LayoutFinder:
    """Lists both sides of one sync over its link's shells."""

    def __init__(
        self,
        link: Link,
        shell: RemoteShell,
        *,
        local: str,
        remote: str,
        small_file_limit: int,
        batch_streams: int,
    ) -> None:
        """``local`` and ``remote`` as the request gives them; the limits size the shells
        started while the host lists its side."""
        self.link = link
        self.shell = shell
        self.local = local
        self.remote = remote
        self.small_file_limit = small_file_limit
        self.batch_streams = batch_streams

    @property
    def host(self) -> str:
        return self.link.host.name

    # -- layouts -----------------------------------------------------------------------------
    async def remote_scan(self, target: ScanTarget) -> Manifest:
        status, output, stderr = await self.shell.run_and_keep(
            remote_scan_command(target), doing="listing files"
        )
        if status != 0:
            raise failure_from_stderr(stderr, f"{self.host}:{target.root}", "listing files")
        return parse_remote_scan(output, self.host)

    async def push_layout(self, rules: ExcludeRules) -> Layout:
        local = os.path.abspath(os.path.expanduser(self.local))
        kind = await asyncio.to_thread(local_root_kind, local)
        workdir = self.link.host.workdir
        if kind == "d":
            listing = asyncio.ensure_future(
                self.remote_scan(ScanTarget(self.remote, base=workdir))
            )
            try:
                source = await asyncio.to_thread(scan_local, ScanTarget(local), rules)
                self.shell.prestart(self._batch_shells(source))
                destination = await listing
            finally:
                if not listing.done():
                    listing.cancel()
                    await asyncio.gather(listing, return_exceptions=True)
            if destination.root_kind not in ("d", "missing"):
                raise SyncUsageError(
                    f"{self.host}:{destination.root} is not a folder; cannot push a folder there"
                )
            filter_excluded(destination, rules)
            return Layout(local, destination.root, source, destination, {}, single=False)
        if kind not in ("f", "l"):
            raise SyncUsageError(f"nothing to push at {local}")
        folder, name = os.path.split(local)
        source = await asyncio.to_thread(scan_local, ScanTarget(folder, (fnmatch_escape(name),)))
        into_folder = self.remote.endswith("/") or self.remote in ("", ".")
        destination = await self.remote_scan(
            ScanTarget(self.remote, names_for(name), base=workdir)
        )
        if destination.root_kind == "d" or (into_folder and destination.root_kind == "missing"):
            return Layout(folder, destination.root, source, destination, {}, single=True)
        target_dir, target_name = posixpath.split(destination.root)
        destination = await self.remote_scan(ScanTarget(target_dir, names_for(target_name)))
        if destination.root_kind not in ("d", "missing"):
            raise SyncUsageError(f"{self.host}:{target_dir} is not a folder")
        source.entries = dict(zip([target_name], source.entries.values(), strict=False))
        return Layout(
            folder, destination.root, source, destination, {target_name: name}, single=True
        )

    def _batch_shells(self, source: Manifest) -> int:
        """Shells to start while the host lists its side: enough for the batches that many
        small files will make (the listing's own shell takes the first). When nothing turns
        out to need sending, they end unused."""
        limit = self.small_file_limit
        small = sum(1 for e in source.entries.values() if e.kind != "d" and e.size <= limit)
        return max(min(self.batch_streams, small // BATCH_MIN_FILES) - 1, 0)

    async def pull_layout(self, rules: ExcludeRules) -> Layout:
        local = os.path.abspath(os.path.expanduser(self.local))
        workdir = self.link.host.workdir
        source = await self.remote_scan(ScanTarget(self.remote, base=workdir))
        if source.root_kind == "missing":
            raise SyncUsageError(f"nothing to pull at {self.host}:{source.root}")
        if source.root_kind == "d":
            await self._load_remote_ignores(source, rules)
            filter_excluded(source, rules)
            destination = await asyncio.to_thread(scan_local, ScanTarget(local))
            if destination.root_kind not in ("d", "missing"):
                raise SyncUsageError(f"{local} is not a folder; cannot pull a folder there")
            filter_excluded(destination, rules)
            return Layout(local, source.root, source, destination, {}, single=False)
        if source.root_kind == "other":
            raise SyncUsageError(f"{self.host}:{source.root} is not a file or folder")
        folder, name = posixpath.split(source.root)
        tools = source.tools
        source = await self.remote_scan(ScanTarget(folder, (fnmatch_escape(name),)))
        source.tools = tools
        source.entries = {rel: e for rel, e in source.entries.items() if rel == name}
        into_folder = self.local.endswith("/") or os.path.isdir(local)
        if into_folder:
            local_dir, local_name = local, name
        else:
            local_dir, local_name = os.path.split(local)
        destination = await asyncio.to_thread(
            scan_local, ScanTarget(local_dir, names_for(local_name))
        )
        names = {}
        if local_name != name:
            source.entries = dict(zip([local_name], source.entries.values(), strict=False))
            names = {local_name: name}
        return Layout(local_dir, folder, source, destination, names, single=True)

    async def _load_remote_ignores(self, source: Manifest, rules: ExcludeRules) -> None:
        """Read the host tree's ignore files (one command) so a pull honours them too."""
        found = sorted(
            rel
            for rel, entry in source.entries.items()
            if entry.kind == "f" and rel.rpartition("/")[2] in IGNORE_FILES
        )
        if not found:
            return
        script = (
            f"cd -- {shlex.quote(source.root)} && "
            "for f in \"$@\"; do wc -c < \"$f\"; cat -- \"$f\"; done"
        )
        # Each file: its size on a line, then its bytes.
        command = f"set -- {' '.join(shlex.quote('./' + rel) for rel in found)}; {script}"
        status, output, _ = await self.shell.run(command, doing="reading ignore files")
        if status != 0:
            return
        at = 0
        for rel in found:
            newline = output.find(b"\n", at)
            if newline < 0:
                break
            try:
                size = int(output[at:newline].strip() or 0)
            except ValueError:
                break  # not what wc printed: the rest is not read
            text = output[newline + 1 : newline + 1 + size]
            at = newline + 1 + size
            folder = rel.rpartition("/")[0]
            rules.add_file(folder, text.decode("utf-8", "surrogateescape"))


def names_for(name: str) -> tuple[str, ...]:
    """The patterns that list one name and the ``.part`` files of its versions."""
    raw = os.fsencode(name)
    short = os.fsdecode(raw[:MAX_NAME_IN_PART]) if len(raw) > MAX_NAME_IN_PART else name
    return (fnmatch_escape(name), f".{fnmatch_escape(short)}.*{PART_SUFFIX}")


def filter_excluded(manifest: Manifest, rules: ExcludeRules) -> None:
    """Drop what the rules exclude, remembering it (``--delete`` keeps those folders)."""
    manifest.excluded = filter_manifest(manifest, rules)
