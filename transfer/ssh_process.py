"""A command on an SSH channel as a binary pipe (:class:`RemoteProcess` over asyncssh)."""

from __future__ import annotations

import asyncio
import contextlib
import shlex

import asyncssh

from transfer.link import exit_status_for_signal
from transfer.process import RemoteProcess, lost_during

# What we accept per channel: bandwidth x RTT in flight, and packets as large as OpenSSH sends
# (256 KiB minus headroom) so a pull costs fewer packets to decrypt and dispatch. asyncssh
# re-opens a channel's window for all that arrived as soon as it hands any data on, so a reader
# that takes less than what is buffered lets the host send ever more: readers of a pull take a
# whole window per read, which keeps memory bounded when the disk here is slower than the
# network.
RECEIVE_PACKET = 256 * 1024 - 1024
_ERRORS = (asyncssh.Error, OSError, EOFError)


async def start_ssh_process(
    conn: asyncssh.SSHClientConnection, host: str, script: str, doing: str, window: int | None
) -> SSHProcess:
    """``sh -c script`` on a new channel of ``conn``; a failure to open it is a lost link.
    Without ``window`` the channel gets the connection's own default."""
    sizes = {"max_pktsize": RECEIVE_PACKET} | ({"window": window} if window else {})
    try:
        # Bytes: a file name that is not UTF-8 travels as the same bytes it has on disk.
        command = f"sh -c {shlex.quote(script)}".encode("utf-8", "surrogateescape")
        process = await conn.create_process(
            command,
            encoding=None,
            stdin=asyncssh.PIPE,
            **sizes,
        )
    except _ERRORS as exc:
        raise lost_during(host, doing) from exc
    return SSHProcess(host, doing, process, conn)


class SSHProcess(RemoteProcess):
    def __init__(
        self,
        host: str,
        doing: str,
        process: asyncssh.SSHClientProcess[bytes],
        conn: asyncssh.SSHClientConnection,
    ) -> None:
        super().__init__(host, doing)
        self._process = process
        self._conn = conn
        self._stderr_task = asyncio.ensure_future(self._collect_stderr())

    async def _collect_stderr(self) -> None:
        with contextlib.suppress(Exception):
            while chunk := await self._process.stderr.read(65536):
                self._add_stderr(chunk)

    async def write(self, data: bytes | memoryview) -> None:
        try:
            self._process.stdin.write(bytes(data) if isinstance(data, memoryview) else data)
            await self._process.stdin.drain()
        except _ERRORS as exc:
            if self._conn.is_closed():
                raise self._lost() from exc
            raise BrokenPipeError(f"{self._doing}: the command stopped reading") from exc

    async def write_eof(self) -> None:
        try:
            self._process.stdin.write_eof()
        except _ERRORS as exc:
            if self._conn.is_closed():
                raise self._lost() from exc

    async def read(self, size: int) -> bytes:
        try:
            data: bytes = await self._process.stdout.read(size)
        except _ERRORS as exc:
            raise self._lost() from exc
        if not data and self._conn.is_closed() and self._process.exit_status is None:
            raise self._lost()
        return data

    async def finish(self) -> tuple[int, bytes]:
        try:
            await self._process.wait_closed()
        except _ERRORS as exc:
            raise self._lost() from exc
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stderr_task, 5)
        status = self._process.exit_status
        if status is None:
            signal = self._process.exit_signal
            if signal is not None:
                status = exit_status_for_signal(signal[0])
            elif self._conn.is_closed():
                raise self._lost()
            else:
                status = 255
        return status, bytes(self._stderr)

    def abort(self) -> None:
        self._stderr_task.cancel()
        with contextlib.suppress(Exception):
            self._process.close()
