"""``gputui logs`` and ``gputui setup``: a job's log printed or followed, from the shell.

``logs -f`` rides out dropped links without losing or repeating a line. Everything the job wrote is
printed with its control characters shown escaped (``tui.text``), on a terminal or not; ``logs
--raw`` alone passes log lines through as the job wrote them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from transfer.connect import open_link
from transfer.hosts import HostProfile, HostStore
from transfer.jobs.events import LogEnded, LogLines, LogReconnecting, LogResumed
from transfer.jobs.host import HostJobs
from transfer.jobs.launch import launch_job
from transfer.jobs.logs import follow_log
from transfer.jobs.state import JobState, JobStatus
from tui.cli.common import UsageError
from tui.text import duration, terminal_safe


# -- logs ---------------------------------------------------------------------------------
def logs_command(args: argparse.Namespace) -> int:
    if args.tail is not None and args.tail < 0:
        raise UsageError("--tail takes a number of lines, 0 or more")
    host = HostStore().get(args.host_name)
    try:
        asyncio.run(
            _print_log(host, args.job, follow=args.follow, tail=args.tail, raw=args.raw)
        )
    except BrokenPipeError:
        # The reader went away (``| head``): not an error; and nothing more to flush at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


async def _print_log(
    host: HostProfile, ref: str, *, follow: bool, tail: int | None, raw: bool = False
) -> JobStatus:
    async with open_link(host) as link:
        jobs = HostJobs(link)
        job = await jobs.resolve(ref)
        printer = LinePrinter(sys.stdout, raw=raw)
        ended: JobStatus | None = None
        async for event in follow_log(jobs, job.id, follow=follow, tail=tail):
            if isinstance(event, LogLines):
                printer.lines(event.lines, event.partial if follow else None)
            elif isinstance(event, LogReconnecting):
                printer.note(
                    f"gputui: lost the link to {host.name} ({event.reason}); "
                    f"reconnecting (attempt {event.attempt})"
                )
            elif isinstance(event, LogResumed):
                printer.note(f"gputui: reconnected to {host.name}; following on")
            elif isinstance(event, LogEnded):
                ended = event.status
        printer.finish()
        if follow and ended is not None:
            printer.note(f"gputui: {ended.id} {ended.state_text}")
        return ended or job


class LinePrinter:
    """Lines to stdout; on a terminal, the progress bar being redrawn shows on the last line.

    Control characters in the lines are shown escaped (tabs kept) unless ``raw``: a job's output
    is the host's text, and an escape sequence in it could rewrite the screen or the clipboard.
    """

    def __init__(self, stream: Any, *, raw: bool = False) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.raw = raw
        self.showing_partial = False

    def lines(self, lines: Sequence[str], partial: str | None) -> None:
        if not self.raw:
            lines = [terminal_safe(line, keep_layout=True) for line in lines]
            partial = None if partial is None else terminal_safe(partial)
        text = "".join(f"{line}\n" for line in lines)
        if self.showing_partial and (lines or partial is None):
            text = "\r\x1b[K" + text
            self.showing_partial = False
        if self.tty and partial:
            text += ("\r\x1b[K" if self.showing_partial else "") + partial
            self.showing_partial = True
        if text:
            self.stream.write(text)
            self.stream.flush()

    def note(self, text: str) -> None:
        self.finish()
        sys.stderr.write(terminal_safe(text) + "\n")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.showing_partial:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.showing_partial = False


# -- setup --------------------------------------------------------------------------------
def setup_command(args: argparse.Namespace) -> int:
    host = HostStore().get(args.host_name)
    if not host.setup_command:
        raise UsageError(
            f"{host.name} has no setup command; add one with "
            f"`gputui hosts add {host.name} --replace … --setup CMD`"
        )
    ended = asyncio.run(_setup(host, follow=not args.detach))
    if ended is None:
        return 0
    if ended.state is JobState.SUCCEEDED:
        sys.stderr.write(f"gputui: setup of {host.name} finished\n")
        return 0
    sys.stderr.write(f"gputui: setup of {host.name} {ended.state_text}\n")
    return 1


async def _setup(host: HostProfile, *, follow: bool) -> JobStatus | None:
    assert host.setup_command is not None
    async with open_link(host) as link:
        jobs = HostJobs(link)
        meta = await launch_job(jobs, host.setup_command, name="setup")
        sys.stderr.write(f"setup job {meta.id} started on {host.name}\n")
        if not follow:
            sys.stdout.write(meta.id + "\n")
            return None
        printer = LinePrinter(sys.stdout)
        started = time.monotonic()
        ended: JobStatus | None = None
        async for event in follow_log(jobs, meta.id):
            if isinstance(event, LogLines):
                printer.lines(event.lines, event.partial)
            elif isinstance(event, LogReconnecting):
                printer.note(f"gputui: lost the link to {host.name}; reconnecting")
            elif isinstance(event, LogEnded):
                ended = event.status
        printer.finish()
        if ended is None:
            ended = await jobs.status(meta.id)
        sys.stderr.write(f"gputui: took {duration(time.monotonic() - started, days=False)}\n")
        return ended
