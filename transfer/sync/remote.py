"""The shells a sync runs its commands in, started through :meth:`Link.start_process`.

Each command is a binary pipe (:class:`transfer.process.RemoteProcess`): over SSH its own
channel on the link's connection (a tar stream, a ``cat`` of one big file, the scan), on the
``local`` host a ``/bin/sh`` subprocess. Streaming over a plain channel costs markedly less CPU
per byte in asyncssh than SFTP requests.
"""

from __future__ import annotations

import asyncio
import re

from transfer.errors import LinkLost
from transfer.link import Link
from transfer.process import RemoteProcess

__all__ = ["RECEIVE_WINDOW", "RemoteProcess", "RemoteShell"]

# What we accept per channel: bandwidth x RTT in flight. A reader of a pull takes a whole
# window per read (``RemoteShell.receive_window``), which keeps memory bounded when the disk
# here is slower than the network (see :mod:`transfer.ssh_process`).
RECEIVE_WINDOW = 8 * 1024 * 1024


# A shell kept after its first command waits for the next one on a line of its stdin; the
# rest of stdin is that command's input. ``printf %b`` restores the escaped newlines.
_FOLLOW_UP = 'IFS= read -r gputui_next || exit 0\neval "$(printf \'%b\' "$gputui_next")"\n'
_END = re.compile(rb"\0gputui-end (\d+)\0\0\Z")
_STDERR_END = b"\0gputui-end\0"


def _as_line(script: str) -> bytes:
    return (script.replace("\\", "\\\\").replace("\n", "\\n") + "\n").encode(
        "utf-8", "surrogateescape"
    )


class RemoteShell:
    """Starts commands through ``sh -c`` on the link's host.

    Starting a command costs a round trip and the host's login shell start-up, which reads the
    person's shell start-up files (a ``conda`` or ``pyenv`` set-up easily takes a few hundred
    ms). So the first command of a sync (the listing) keeps its shell: the next command runs
    in it, and a no-op push or a one-file transfer starts a single shell, as rsync does.
    """

    def __init__(self, link: Link, *, receive_window: int = RECEIVE_WINDOW) -> None:
        self.link = link
        self.host = link.host.name
        # Under --bwlimit a pull keeps little in flight: the limit then holds on the network,
        # not only on our reads, and a cut connection loses little.
        self.receive_window = receive_window

        self._ready: list[RemoteProcess] = []
        self._starting: list[asyncio.Future[RemoteProcess]] = []

    def prestart(self, count: int) -> None:
        """Start ``count`` shells now, to wait for commands that will come soon: the shell
        start-up then overlaps the listing instead of delaying the transfer."""
        for _ in range(count):
            self._starting.append(asyncio.ensure_future(self._fresh(_FOLLOW_UP, "waiting")))

    async def _waiting(self) -> RemoteProcess | None:
        """A shell waiting for its command: a kept one, else one being started."""
        if self._ready:
            return self._ready.pop()
        while self._starting:
            try:
                return await self._starting.pop(0)
            except (LinkLost, OSError):
                continue
        return None

    async def start(self, script: str, *, doing: str) -> RemoteProcess:
        while (process := await self._waiting()) is not None:
            try:
                await process.write(_as_line(script))
            except (LinkLost, BrokenPipeError, ConnectionError):
                process.abort()
                continue
            process.reuse(doing)
            return process
        return await self._fresh(script, doing)

    async def _fresh(self, script: str, doing: str) -> RemoteProcess:
        return await self.link.start_process(
            script, doing=doing, receive_window=self.receive_window
        )

    async def run_and_keep(self, script: str, *, doing: str) -> tuple[int, bytes, bytes]:
        """Like ``run`` (no input), and keep the shell for the next ``start``."""
        # stdin stays the shell's (the next command comes on it): the command gets /dev/null.
        kept = (
            f"( {script}\n) </dev/null; s=$?; printf '\\0gputui-end\\0' >&2; "
            f"printf '\\0gputui-end %d\\0\\0' \"$s\"\n{_FOLLOW_UP}"
        )
        process = await self.start(kept, doing=doing)
        buffer = bytearray()
        try:
            while True:
                chunk = await process.read(1 << 20)
                if not chunk:
                    status, stderr = await process.finish()
                    return status, bytes(buffer), stderr
                buffer += chunk
                end = _END.search(buffer, max(len(buffer) - 64, 0))
                if end is not None:
                    break
        except BaseException:
            process.abort()
            raise
        status = int(end.group(1))
        output = bytes(buffer[: end.start()])
        stderr = await process.stderr_through(_STDERR_END)
        self._ready.append(process)
        return status, output, stderr

    def adopt(self, shells: list[RemoteProcess]) -> None:
        """Take over shells that an earlier sync kept waiting: the next commands skip the
        host's shell start-up (the connection keeper hands them from one push to the next)."""
        self._ready.extend(shells)

    def close_ready(self, *, keep: int = 0) -> list[RemoteProcess]:
        """End the shells still waiting for a command (and those still starting), except the
        ``keep`` last kept ones, which are returned for a later sync to ``adopt``."""
        kept = self._ready[len(self._ready) - keep :] if keep else []
        for process in self._ready[: len(self._ready) - len(kept)]:
            process.abort()
        self._ready.clear()
        for starting in self._starting:
            starting.add_done_callback(_abort_started)
            starting.cancel()
        self._starting.clear()
        return kept

    async def run(
        self, script: str, *, doing: str, input: bytes | None = None
    ) -> tuple[int, bytes, bytes]:
        """Run to the end: exit status, all of stdout, the stderr tail. A command without
        input leaves its shell waiting for the next one."""
        if input is None:
            return await self.run_and_keep(script, doing=doing)
        process = await self.start(script, doing=doing)
        try:
            writer = asyncio.ensure_future(_feed(process, input))
            chunks = []
            while chunk := await process.read(1 << 20):
                chunks.append(chunk)
            await writer
            status, stderr = await process.finish()
        except BaseException:
            process.abort()
            raise
        return status, b"".join(chunks), stderr


def _abort_started(future: asyncio.Future[RemoteProcess]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().abort()


async def _feed(process: RemoteProcess, data: bytes | None) -> None:
    if data:
        await process.write(data)
    await process.write_eof()
