"""A command running on a host as a binary pipe: what :meth:`Link.start_process` returns.

Each kind of link implements it once (an SSH channel, a local subprocess); sync, the keeper
and anything else that streams bytes to or from a host is written against this interface only.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib

from transfer.errors import LinkLost

STDERR_LIMIT = 64 * 1024
STDERR_WAIT_S = 5.0
RETIRE_WAIT_S = 10.0


def lost_during(host: str, doing: str) -> LinkLost:
    """The error of a process whose connection dropped."""
    return LinkLost(f"the connection to {host} dropped during {doing}")


class RemoteProcess(abc.ABC):
    """One running command with binary stdin and stdout; stderr is collected (bounded)."""

    def __init__(self, host: str, doing: str) -> None:
        self.host = host
        self._doing = doing
        self._stderr = bytearray()
        self._stderr_grew = asyncio.Event()

    @abc.abstractmethod
    async def write(self, data: bytes | memoryview) -> None:
        """Write and wait until the pipe has room again (flow control)."""

    @abc.abstractmethod
    async def write_eof(self) -> None: ...

    @abc.abstractmethod
    async def read(self, size: int) -> bytes:
        """Up to ``size`` bytes of stdout; ``b""`` at its end."""

    @abc.abstractmethod
    async def finish(self) -> tuple[int, bytes]:
        """Wait for the end: the exit status and the stderr tail."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Stop the command now (close its channel or kill it); no waiting."""

    async def retire(self, timeout: float = RETIRE_WAIT_S) -> None:
        """End the command's input and wait (bounded) for it to exit, then close it.

        For a command that writes files on the host: one whose channel is only closed can go
        on draining its input there while a re-run already writes the same ``.part``. Waiting
        for its exit means an interrupted push is over on the host too before anything else
        starts (its short ``.part`` is kept, its batch folder removed).
        """
        with contextlib.suppress(Exception):
            await self.write_eof()
            async with asyncio.timeout(timeout):
                await self.finish()
        self.abort()

    def _lost(self) -> LinkLost:
        return lost_during(self.host, self._doing)

    def _add_stderr(self, chunk: bytes) -> None:
        self._stderr += chunk
        del self._stderr[:-STDERR_LIMIT]
        self._stderr_grew.set()

    async def stderr_through(self, marker: bytes) -> bytes:
        """The stderr written before ``marker``, which a kept shell writes after a command
        (stderr travels apart from stdout and may lag behind it)."""
        try:
            async with asyncio.timeout(STDERR_WAIT_S):
                while not self._stderr.endswith(marker):
                    self._stderr_grew.clear()
                    await self._stderr_grew.wait()
        except TimeoutError:
            pass
        text = bytes(self._stderr)
        self._stderr.clear()
        return text.removesuffix(marker)

    def reuse(self, doing: str) -> None:
        """A kept shell starts its next command: fresh stderr, a new description."""
        self._stderr.clear()
        self._doing = doing
