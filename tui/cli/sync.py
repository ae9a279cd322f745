"""``gputui push`` and ``gputui pull``: resumable, verified copies between here and a host.

The heavy imports (asyncssh, rich's progress) wait until a verb runs, so a push with nothing to
do costs little more than the connection and one listing of each side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import posixpath
import sys
from typing import TYPE_CHECKING, Any

from transfer.errors import GputuiError
from transfer.sync.bwlimit import parse_rate
from tui.sizes import human_bytes, human_eta

if TYPE_CHECKING:
    from transfer.sync.engine import SyncRequest
    from transfer.sync.events import Progress, SyncEvent, SyncResult


def register(subparsers: Any) -> None:
    push = subparsers.add_parser(
        "push",
        help="copy a folder or file to a host (resumable, only what changed)",
        description="Mirror LOCAL (default: this folder) into REMOTE on HOST (default: the "
        "host's workdir). Only files whose size or mtime differ are sent; an interrupted push "
        "resumes when run again. A relative REMOTE is inside the workdir.",
    )
    push.add_argument("host_name", metavar="HOST")
    push.add_argument("local", metavar="LOCAL", nargs="?", default=".")
    push.add_argument("remote", metavar="REMOTE", nargs="?", default=None)
    _add_flags(push)
    push.set_defaults(handler=run_push)

    pull = subparsers.add_parser(
        "pull",
        help="copy a folder or file from a host (resumable, only what changed)",
        description="Mirror REMOTE on HOST into LOCAL (default: ./NAME, NAME being the last "
        "part of REMOTE). A relative REMOTE is inside the host's workdir.",
    )
    pull.add_argument("host_name", metavar="HOST")
    pull.add_argument("remote", metavar="REMOTE")
    pull.add_argument("local", metavar="LOCAL", nargs="?", default=None)
    _add_flags(pull)
    pull.set_defaults(handler=run_pull)


def _rate(text: str) -> int:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", "-n", action="store_true",
                        help="show what would be sent, skipped and deleted; change nothing")
    parser.add_argument("--verify", action="store_true",
                        help="hash both ends afterwards (xxh128 or sha256) and report mismatches")
    parser.add_argument("--delete", action="store_true",
                        help="remove destination files that the source does not have")
    parser.add_argument("--exclude", action="append", default=[], metavar="PAT",
                        help="leave out paths matching PAT (gitignore syntax; repeatable); "
                        ".gitignore and .gputuiignore files apply too")
    parser.add_argument("--bwlimit", type=_rate, metavar="RATE",
                        help="at most RATE bytes per second, e.g. 500K, 20M")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run_push(args: argparse.Namespace) -> int:
    from transfer.hosts import HostStore
    from transfer.sync.engine import SyncRequest

    host = HostStore().get(args.host_name)
    remote = args.remote if args.remote is not None else host.workdir.rstrip("/") + "/"
    request = SyncRequest(
        "push", args.local, remote, delete=args.delete, dry_run=args.dry_run,
        verify=args.verify, excludes=tuple(args.exclude), bwlimit=args.bwlimit,
    )
    return _run(host, request, args.json)


def run_pull(args: argparse.Namespace) -> int:
    from transfer.hosts import HostStore
    from transfer.sync.engine import SyncRequest

    host = HostStore().get(args.host_name)
    local = args.local
    if local is None:
        name = posixpath.basename(args.remote.rstrip("/")) or host.name
        local = os.path.join(os.getcwd(), "~" if name == "~" else name)
    request = SyncRequest(
        "pull", local, args.remote, delete=args.delete, dry_run=args.dry_run,
        verify=args.verify, excludes=tuple(args.exclude), bwlimit=args.bwlimit,
    )
    return _run(host, request, args.json)


def _run(host: Any, request: SyncRequest, as_json: bool) -> int:
    view = _ProgressView(enabled=not as_json and not request.dry_run and sys.stderr.isatty())
    try:
        result = asyncio.run(_sync(host, request, view.on_event))
    except KeyboardInterrupt:
        view.stop()
        raise GputuiError(
            f"{request.direction} interrupted; run the same command again to resume"
        ) from None
    finally:
        view.stop()
    if as_json:
        import json

        sys.stdout.write(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        _print_result(result)
    return 0 if result.ok else 1


async def _sync(host: Any, request: SyncRequest, on_event: Any) -> SyncResult:
    _import_asyncssh_quickly()
    from transfer.connect import open_link
    from transfer.sync.engine import Sync

    async with open_link(host) as link:
        return await Sync(link, request, on_event).run()


def _import_asyncssh_quickly() -> None:
    """Import asyncssh without the ``ctypes.util.find_library`` calls it makes for liboqs and
    nettle, which run ``ldconfig`` and ``gcc`` (tens of ms of every push and pull); the library
    folders are looked at directly instead, so installed libraries are still found."""
    if "asyncssh" in sys.modules:
        return
    import ctypes.util

    original = ctypes.util.find_library

    def find(name: str) -> str | None:
        return _find_library(name) if name in _ASYNCSSH_LIBRARIES else original(name)

    ctypes.util.find_library = find
    try:
        import asyncssh  # noqa: F401
    finally:
        ctypes.util.find_library = original


_ASYNCSSH_LIBRARIES = frozenset({"oqs", "liboqs", "nettle", "libnettle", "libnettle-6"})


def _find_library(name: str) -> str | None:
    import glob

    folders = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    for conf in sorted(glob.glob("/etc/ld.so.conf.d/*.conf")):
        try:
            with open(conf) as f:
                folders += [line.strip() for line in f if line.strip().startswith("/")]
        except OSError:
            continue
    folders += ["/usr/local/lib", "/usr/local/lib64", "/usr/lib", "/usr/lib64", "/lib", "/lib64"]
    for folder in folders:
        found = sorted(glob.glob(os.path.join(folder, f"lib{name.removeprefix('lib')}.so*")))
        if found:
            return found[0]
    return None


class _ProgressView:
    """A rich live display on stderr: the whole transfer, and the file that is moving."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._total: Any = None
        self._file: Any = None

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(bar_width=30),
            TextColumn("{task.fields[amount]}"),
            TextColumn("{task.fields[speed]}"),
            TextColumn("{task.fields[eta]}"),
            console=Console(stderr=True),
            transient=True,
            auto_refresh=False,
        )
        self._progress.start()
        self._total = self._progress.add_task("total", total=1, amount="", speed="", eta="")
        self._file = self._progress.add_task("", total=1, amount="", speed="", eta="")

    def on_event(self, event: SyncEvent) -> None:
        from transfer.sync.events import FileProblem, Progress, Retrying

        if isinstance(event, Retrying):
            self._print(f"connection lost ({event.reason}); retry {event.attempt}/{event.of} "
                        f"in {event.delay_s:g} s")
        elif isinstance(event, FileProblem):
            self._print(f"skipped {event.path!r}: {event.reason}")
        elif isinstance(event, Progress) and self.enabled and event.phase == "sending":
            self._show(event)

    def _print(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            sys.stderr.write(f"gputui: {text}\n")

    def _show(self, event: Progress) -> None:
        if self._progress is None:
            self._start()
        total = max(event.bytes_total, 1)
        self._progress.update(
            self._total,
            completed=min(event.bytes_done, total),
            total=total,
            description=f"{event.files_done}/{event.files_total} files",
            amount=f"{human_bytes(event.bytes_done)}/{human_bytes(event.bytes_total)}",
            speed=f"{human_bytes(event.rate)}/s",
            eta=human_eta(event.eta_s),
        )
        current = event.current
        if current is not None:
            self._progress.update(
                self._file,
                completed=min(current.done, max(current.size, 1)),
                total=max(current.size, 1),
                description=_short(current.name),
                amount=f"{human_bytes(current.done)}/{human_bytes(current.size)}",
                speed="",
                eta="",
            )
        self._progress.refresh()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _short(name: str, width: int = 40) -> str:
    name = name if name.isprintable() else repr(name)
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _print_result(result: SyncResult) -> None:
    out = sys.stdout.write
    if result.dry_run and result.plan is not None:
        plan = result.plan
        out(f"dry run: {result.source} → {result.destination}\n")
        out(f"would send {plan.files_to_send} files ({human_bytes(plan.bytes_to_send)})"
            + (f", {human_bytes(plan.resumable_bytes)} of them resumed" if plan.resumable_bytes
               else "")
            + f"; skip {plan.files_to_skip} unchanged ({human_bytes(plan.bytes_to_skip)})"
            + f"; delete {plan.to_delete}\n")
        for name in plan.send:
            out(f"  send    {_short(name, 200)}\n")
        for name in plan.delete:
            out(f"  delete  {_short(name, 200)}\n")
        return
    verb = "pushed" if result.direction == "push" else "pulled"
    speed = result.bytes_sent / result.elapsed_s if result.elapsed_s > 0 else 0.0
    line = (
        f"{verb} {result.files_sent} files ({human_bytes(result.bytes_sent)}) "
        f"{result.source} → {result.destination} in {result.elapsed_s:.1f} s"
        + (f" ({human_bytes(speed)}/s)" if result.bytes_sent else "")
        + f"; {result.files_skipped} unchanged"
    )
    if result.resumed_bytes:
        line += f"; resumed {human_bytes(result.resumed_bytes)}"
    if result.deleted:
        line += f"; deleted {result.deleted}"
    if result.hash_name:
        line += f"; verified {result.verified} ({result.hash_name})"
    out(line + "\n")
    for rel in result.repaired:
        out(f"  differed after the copy (--verify), sent again and now equal: {_short(rel, 200)}\n")
    for rel in result.resent_changed:
        out(f"  changed during the transfer, sent again: {_short(rel, 200)}\n")
    for mismatch in result.mismatches:
        sys.stderr.write(f"gputui: MISMATCH {_short(mismatch.path, 200)}: source "
                         f"{mismatch.source_hash[:16]}… destination "
                         f"{mismatch.destination_hash[:16]}…\n")
    for problem in result.problems:
        sys.stderr.write(f"gputui: not sent: {_short(problem.path, 200)}: {problem.reason}\n")
