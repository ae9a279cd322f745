"""Reading a job's log on the host: the last N lines, the whole log, or following it live.

Following keeps a byte offset: only complete lines are handed out, and the offset moves past a
line only once it has been handed out, so a dropped link costs nothing: reconnect, read on from
the offset, and no line is missed or repeated. Progress bars redrawn with carriage returns are
handed out as their last state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator

from trainers.protocol.jobdir import EXIT_CODE
from transfer.backoff import Backoff
from transfer.errors import GputuiError, HostUnreachable, LinkLost
from transfer.jobs.events import LogEnded, LogEvent, LogLines, LogReconnecting, LogResumed
from transfer.jobs.host import HostJobs
from transfer.jobs.state import JobStatus
from transfer.link import LinkFile

#: Bytes read per request while catching up; one batch of lines per read.
CHUNK = 256 * 1024
#: A line longer than this is handed out in pieces rather than held back without limit.
MAX_LINE = 1024 * 1024
#: ``--tail`` reads at most this much of the end of a log, however long its lines are.
TAIL_WINDOW = 16 * 1024 * 1024
#: What a line that began before the tail window starts with.
CUT_MARK = "…"
_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))
#: Unfinished progress-bar redraws beyond this are dropped (only the last state matters).
MAX_REDRAWS = 64 * 1024
#: How often an idle follower looks for new output, and for the end of the job.
POLL_S = 0.2
STATE_CHECK_S = 0.5
FULL_CHECK_EVERY = 10
#: How long to keep trying to restore a dropped link, and the waits between attempts.
RECONNECT_FOR_S = 300.0
RECONNECT_BACKOFF = Backoff(initial_s=0.2, factor=2.0, cap_s=5.0, deadline_s=RECONNECT_FOR_S)

#: What a dropped link looks like from here.
LINK_ERRORS: tuple[type[BaseException], ...] = (
    LinkLost,
    HostUnreachable,
    ConnectionError,
    EOFError,
)


def collapse_cr(line: str) -> str:
    """The last state of a line redrawn with carriage returns (``a\\rb`` → ``b``; CRLF → text)."""
    if "\r" not in line:
        return line
    line = line.rstrip("\r")
    return line[line.rfind("\r") + 1 :]


class LineAssembler:
    """Turns log bytes into complete lines and remembers the unfinished last one."""

    def __init__(self, offset: int = 0) -> None:
        self.read_pos = offset
        self._pending = b""
        self._pending_len = 0

    @property
    def offset(self) -> int:
        """Byte offset just after the last complete line handed out."""
        return self.read_pos - self._pending_len

    @property
    def partial(self) -> str | None:
        """The current state of the unfinished last line, if any."""
        if not self._pending:
            return None
        return collapse_cr(self._pending.decode("utf-8", "replace")) or None

    def feed(self, data: bytes) -> list[str]:
        """Append bytes read at ``read_pos``; return the lines they complete."""
        self.read_pos += len(data)
        buf = self._pending + data if self._pending else data
        pending_len = self._pending_len + len(data)
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._pending, self._pending_len = buf, pending_len
            return self._cap_pending()
        complete, rest = buf[:cut], buf[cut + 1 :]
        self._pending, self._pending_len = rest, len(rest)
        lines = decode_lines(complete)
        return lines + self._cap_pending()

    def flush(self) -> list[str]:
        """Hand out the unfinished last line as a line (the log ended without a newline)."""
        if not self._pending_len:
            return []
        line = collapse_cr(self._pending.decode("utf-8", "replace"))
        self._pending, self._pending_len = b"", 0
        return [line]

    def _cap_pending(self) -> list[str]:
        pending = self._pending
        if len(pending) > MAX_REDRAWS and b"\r" in pending:
            last = pending.rstrip(b"\r").rfind(b"\r")
            if last >= 0:
                self._pending = pending[last + 1 :]
        if len(self._pending) > MAX_LINE:
            return self.flush()
        return []


def decode_lines(data: bytes) -> list[str]:
    """Split newline-separated bytes (without the final newline) into collapsed lines."""
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if "\r" in text:
        lines = [collapse_cr(line) for line in lines]
    return lines


async def tail_lines(jobs: HostJobs, job_id: str, count: int) -> LogLines:
    """The last ``count`` complete lines and the offset to follow on from.

    Only the last ``TAIL_WINDOW`` bytes are read, whatever the line lengths: a log of one
    endless line costs one window, and that line shows as its last ``MAX_LINE`` bytes after
    ``CUT_MARK``.
    """
    path = await jobs.log_path(job_id)
    try:
        size = (await jobs.link.stat(path)).size
    except FileNotFoundError:
        return LogLines(lines=[], offset=0)
    start, newlines = size, 0
    chunks: list[bytes] = []
    async with await jobs.link.open(path, "rb") as f:
        while start > 0 and newlines <= count and size - start < TAIL_WINDOW:
            step = min(CHUNK, start, TAIL_WINDOW - (size - start))
            start -= step
            chunk = (await f.read(step, start))[:step]
            if len(chunk) < step:  # the log was cut short meanwhile: follow it from here
                return LogLines(lines=[], offset=start)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
    data = b"".join(reversed(chunks))
    cut = data.rfind(b"\n")
    if cut < 0:
        if start == 0:
            return _tail_result([], 0, data)
        # One line longer than the window: its end, marked as cut, and follow on after it.
        end = data[-MAX_LINE:].lstrip(_UTF8_CONTINUATION)
        line = CUT_MARK + collapse_cr(end.decode("utf-8", "replace"))
        return LogLines(lines=[line] if count > 0 else [], offset=size)
    lines = decode_lines(data[:cut])
    if start > 0:
        first = data.find(b"\n")  # the first line of the window began before it
        lines[0] = CUT_MARK + decode_lines(data[:first].lstrip(_UTF8_CONTINUATION))[0]
    return _tail_result(lines[-count:] if count > 0 else [], start + cut + 1, data[cut + 1 :])


def _tail_result(lines: list[str], offset: int, rest: bytes) -> LogLines:
    partial = collapse_cr(rest.decode("utf-8", "replace")) if rest else None
    return LogLines(lines=lines, offset=offset, partial=partial or None)


async def follow_log(
    jobs: HostJobs,
    job_id: str,
    *,
    offset: int = 0,
    follow: bool = True,
    tail: int | None = None,
    poll_s: float = POLL_S,
    reconnect_for_s: float = RECONNECT_FOR_S,
) -> AsyncIterator[LogEvent]:
    """Yield the log of ``job_id`` from ``offset`` (or its last ``tail`` lines) in batches.

    With ``follow``, keep going until the job has ended and its log is read to the end, riding
    out dropped links; without it, stop at the current end of the log.
    """
    if tail is not None:
        last = await tail_lines(jobs, job_id, tail)
        offset = last.offset
        if last.lines:
            yield LogLines(lines=last.lines, offset=offset)
    path = await jobs.log_path(job_id)
    events = follow_job_file(
        jobs, job_id, path, offset=offset, follow=follow, poll_s=poll_s,
        reconnect_for_s=reconnect_for_s
    )
    async with contextlib.aclosing(events):
        async for event in events:
            yield event


async def follow_job_file(
    jobs: HostJobs,
    job_id: str,
    path: str,
    *,
    offset: int = 0,
    follow: bool = True,
    poll_s: float = POLL_S,
    reconnect_for_s: float = RECONNECT_FOR_S,
) -> AsyncGenerator[LogEvent, None]:
    """Yield the lines of a file that job ``job_id`` appends to (its log, its metrics) from
    ``offset``, in batches.

    A file that does not exist yet reads as empty until it appears. With ``follow``, keep going
    until the job has ended and the file is read to the end, riding out dropped links; without it,
    stop at the current end of the file.
    """
    assembler = LineAssembler(offset)
    reader = _Reader(jobs, path)
    try:
        if not follow:
            async for batch in _read_to_end(reader, assembler):
                yield batch
            final = assembler.flush()
            if final:
                yield LogLines(lines=final, offset=assembler.offset)
            return

        last_check = 0.0
        checks = -1
        exit_code_path = f"{await jobs.job_dir(job_id)}/{EXIT_CODE}"
        ended: JobStatus | None = None
        retries = RECONNECT_BACKOFF.tuned(deadline_s=reconnect_for_s).start()
        while True:
            try:
                if not jobs.link.is_connected:
                    # A drop goes to this loop's retries, not to a reconnect loop of the link's.
                    raise LinkLost(f"the connection to {jobs.host_name} is down")
                got_data = False
                async for batch in _read_to_end(reader, assembler):
                    got_data = True
                    yield batch
                if retries.failures:
                    retries.reset()
                    yield LogResumed(offset=assembler.offset)
                if ended is not None:
                    final = assembler.flush()
                    if final:
                        yield LogLines(lines=final, offset=assembler.offset)
                    yield LogEnded(status=ended)
                    return
                now = time.monotonic()
                if not got_data and now - last_check >= STATE_CHECK_S:
                    last_check = now
                    checks += 1
                    # An exit code is one cheap file lookup; a lost job needs the full probe.
                    if checks % FULL_CHECK_EVERY == 0 or await jobs.link.exists(exit_code_path):
                        status = await jobs.status(job_id)
                        if not status.state.is_active:
                            # Read once more: the job may have written its last lines just now.
                            ended = status
                            continue
                if not got_data:
                    partial = assembler.partial
                    if partial is not None and reader.partial_shown != partial:
                        reader.partial_shown = partial
                        yield LogLines(lines=[], offset=assembler.offset, partial=partial)
                    await asyncio.sleep(poll_s)
            except LINK_ERRORS as error:
                await reader.close()
                # This loop alone decides how long to keep trying: each attempt is one
                # ``connect`` of the link, never a reconnect budget of the link's own.
                while (delay := retries.next_delay()) is not None:
                    yield LogReconnecting(
                        attempt=retries.failures, reason=_reason(error), delay_s=delay
                    )
                    await asyncio.sleep(delay)
                    try:
                        await jobs.link.connect()
                    except LINK_ERRORS as again:
                        error = again
                    else:
                        break
                else:
                    raise LinkLost(
                        f"lost the link to {jobs.host_name} and could not restore it: {error}"
                    ) from None
    finally:
        await reader.close()


class _Reader:
    """The followed file, opened on first use and reopened after the link comes back."""

    def __init__(self, jobs: HostJobs, path: str) -> None:
        self.jobs = jobs
        self.path = path
        self.file: LinkFile | None = None
        self.partial_shown: str | None = None

    async def read(self, offset: int) -> bytes:
        if self.file is None:
            try:
                self.file = await self.jobs.link.open(self.path, "rb")
            except FileNotFoundError:
                return b""
        return await self.file.read(CHUNK, offset)

    async def close(self) -> None:
        file, self.file = self.file, None
        if file is not None:
            with contextlib.suppress(GputuiError, OSError, EOFError):
                await file.close()


async def _read_to_end(reader: _Reader, assembler: LineAssembler) -> AsyncIterator[LogLines]:
    """One batch per read, until the read comes back short."""
    while True:
        data = await reader.read(assembler.read_pos)
        if not data:
            return
        lines = assembler.feed(data)
        if lines:
            reader.partial_shown = assembler.partial
            yield LogLines(lines=lines, offset=assembler.offset, partial=assembler.partial)
        if len(data) < CHUNK:
            return


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
