"""``gputui push`` and ``gputui pull``: resumable, verified copies between here and a host.

The work runs in the connection keeper (``transfer.keeper``), which keeps the SSH connection and
a shell on the host between commands; this module then imports only the standard library and
the keeper's client. With ``GPUTUI_KEEP_S=0``, or when no keeper can start, the command does the
work itself, and the heavy imports (asyncssh, the engine, rich's progress) wait until then.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import sys
from typing import TYPE_CHECKING, Any

from transfer.errors import GputuiError
from transfer.sync.bwlimit import parse_rate
from tui.text import human_bytes, human_eta, terminal_safe

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


KEEPER_NOTE = (
    "The first push or pull starts a background connection keeper that keeps the SSH "
    "connection and a shell on the host for the next commands; it ends after GPUTUI_KEEP_S "
    "seconds (default 300) with nothing to do, and GPUTUI_KEEP_S=0 turns it off."
)


def _add_flags(parser: argparse.ArgumentParser) -> None:
    parser.epilog = KEEPER_NOTE
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
    fields = _fields(args, "push", os.path.abspath(os.path.expanduser(args.local)), args.remote)
    return _run(args.host_name, fields, args.json)


def run_pull(args: argparse.Namespace) -> int:
    local = args.local
    if local is None:
        name = posixpath.basename(args.remote.rstrip("/")) or args.host_name
        local = os.path.join(os.getcwd(), "~" if name == "~" else name)
    fields = _fields(args, "pull", os.path.abspath(os.path.expanduser(local)), args.remote)
    return _run(args.host_name, fields, args.json)


def _fields(args: argparse.Namespace, direction: str, local: str, remote: str | None) -> (
    dict[str, Any]
):
    """The request as plain values (``transfer.sync.engine.REQUEST_FIELDS``); paths here are
    absolute, as the keeper does not share this command's folder."""
    return {
        "direction": direction, "local": local, "remote": remote, "delete": args.delete,
        "dry_run": args.dry_run, "verify": args.verify, "excludes": list(args.exclude),
        "bwlimit": args.bwlimit,
    }


def _run(host_name: str, fields: dict[str, Any], as_json: bool) -> int:
    """Through the connection keeper when one can be used, else in this process."""
    from transfer.keeper import client
    from transfer.keeper.address import KeeperUnavailable

    dry_run = bool(fields["dry_run"])
    view = _ProgressView(enabled=not as_json and not dry_run and sys.stderr.isatty())
    try:
        try:
            data = client.sync(host_name, fields, view.on_json_event)
        except KeeperUnavailable:
            data = None
        if data is None:
            result = _run_here(host_name, fields, view.on_event)
            data = result.to_json()
    except KeyboardInterrupt:
        view.stop()
        raise GputuiError(
            f"{fields['direction']} interrupted; run the same command again to resume"
        ) from None
    finally:
        view.stop()
    if as_json:
        import json

        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        from transfer.sync.events import SyncResult

        _print_result(SyncResult.from_json(data))
    return 0 if data["ok"] else 1


def _run_here(host_name: str, fields: dict[str, Any], on_event: Any) -> SyncResult:
    """The sync in this process, on a connection of its own."""
    import asyncio

    from transfer.hosts import HostStore
    from transfer.sync.engine import request_from_fields

    host = HostStore().get(host_name)
    return asyncio.run(_sync(host, request_from_fields(fields, host), on_event))


async def _sync(host: Any, request: SyncRequest, on_event: Any) -> SyncResult:
    from transfer.asyncssh_import import import_asyncssh

    import_asyncssh()
    from transfer.connect import open_link
    from transfer.sync.engine import Sync

    async with open_link(host) as link:
        return await Sync(link, request, on_event).run()


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
            # A file name comes from the host: shown as text, never read as rich markup.
            TextColumn("{task.description}", justify="left", markup=False),
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

    def on_json_event(self, data: dict[str, Any]) -> None:
        from transfer.sync.events import event_from_json

        self.on_event(event_from_json(data))

    def on_event(self, event: SyncEvent) -> None:
        from transfer.sync.events import FileProblem, Progress, Retrying

        if isinstance(event, Retrying):
            self._print(f"connection lost ({event.reason}); retry {event.attempt}/{event.of} "
                        f"in {event.delay_s:g} s")
        elif isinstance(event, FileProblem):
            self._print(f"skipped {_short(event.path, 200)}: {terminal_safe(event.reason)}")
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
    """A name from the host as one line of text: control characters shown escaped."""
    name = terminal_safe(name)
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
        for name in plan.replace:
            out(f"  replace {_short(name, 200)}\n")
        reasons = {problem.path: problem.reason for problem in result.problems}
        for name in plan.conflicts:
            out(f"  conflict {_short(name, 200)}: {terminal_safe(reasons.get(name, ''))}\n")
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
        sys.stderr.write(
            f"gputui: not sent: {_short(problem.path, 200)}: {terminal_safe(problem.reason)}\n"
        )
