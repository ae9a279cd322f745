"""Binary pipes to commands on the host: the one primitive a sync needs from a link.

Over SSH each command is its own channel on the link's connection (a tar stream, a ``cat`` of
one big file, the scan); on the ``local`` host it is a ``/bin/sh`` subprocess. Both behave the
same: bytes in, bytes out, an exit status, and a lost connection raised as ``LinkLost``.
Streaming over a plain channel costs markedly less CPU per byte in asyncssh than SFTP requests.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import re
import shlex
from typing import Any

from transfer.errors import LinkLost
from transfer.link import Link, exit_status_for_signal

STDERR_LIMIT = 64 * 1024
STDERR_WAIT_S = 5.0
RETIRE_WAIT_S = 10.0
# What we accept per channel: bandwidth x RTT in flight, and packets as large as OpenSSH sends
# (256 KiB minus headroom) so a pull costs fewer packets to decrypt and dispatch. asyncssh
# re-opens a channel's window for all that arrived as soon as it hands any data on, so a reader
# that takes less than what is buffered lets the host send ever more: readers of a pull take a
# whole window per read (``RemoteShell.receive_window``), which keeps memory bounded when the
# disk here is slower than the network.
RECEIVE_WINDOW = 8 * 1024 * 1024
RECEIVE_PACKET = 256 * 1024 - 1024


class RemoteProcess(abc.ABC):
    """One running command with binary stdin and stdout; stderr is collected (bounded)."""

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

    _stderr: bytearray
    _doing: str
    _stderr_grew: asyncio.Event

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

    def lost(self, doing: str) -> LinkLost:
        return LinkLost(f"the connection to {self.host} dropped during {doing}")

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
        if self.link.host.is_local:
            return await _LocalProcess.start(script, await self.link.home())
        return await _SSHProcess.start(self, script, doing)

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
        for process in shells:
            if isinstance(process, _SSHProcess):
                process._shell = self
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


class _SSHProcess(RemoteProcess):
    def __init__(self, shell: RemoteShell, process: Any, conn: Any, doing: str) -> None:
        self._shell = shell
        self._process = process
        self._conn = conn
        self._doing = doing
        self._stderr = bytearray()
        self._stderr_grew = asyncio.Event()
        self._stderr_task = asyncio.ensure_future(self._collect_stderr())

    @classmethod
    async def start(cls, shell: RemoteShell, script: str, doing: str) -> _SSHProcess:
        import asyncssh

        link: Any = shell.link
        try:
            await link.ensure_connected()
            conn = link.connection
            # Bytes: a file name that is not UTF-8 travels as the same bytes it has on disk.
            command = f"sh -c {shlex.quote(script)}".encode("utf-8", "surrogateescape")
            process = await conn.create_process(
                command,
                encoding=None,
                stdin=asyncssh.PIPE,
                window=shell.receive_window,
                max_pktsize=RECEIVE_PACKET,
            )
        except LinkLost:
            raise
        except (asyncssh.Error, OSError, EOFError) as exc:
            raise shell.lost(doing) from exc
        return cls(shell, process, conn, doing)

    async def _collect_stderr(self) -> None:
        with contextlib.suppress(Exception):
            while chunk := await self._process.stderr.read(65536):
                self._add_stderr(chunk)

    def _lost(self) -> LinkLost:
        return self._shell.lost(self._doing)

    async def write(self, data: bytes | memoryview) -> None:
        import asyncssh

        try:
            self._process.stdin.write(bytes(data) if isinstance(data, memoryview) else data)
            await self._process.stdin.drain()
        except (asyncssh.Error, OSError, EOFError) as exc:
            if self._conn.is_closed():
                raise self._lost() from exc
            raise BrokenPipeError(f"{self._doing}: the command stopped reading") from exc

    async def write_eof(self) -> None:
        import asyncssh

        try:
            self._process.stdin.write_eof()
        except (asyncssh.Error, OSError, EOFError) as exc:
            if self._conn.is_closed():
                raise self._lost() from exc

    async def read(self, size: int) -> bytes:
        import asyncssh

        try:
            data: bytes = await self._process.stdout.read(size)
        except (asyncssh.Error, OSError, EOFError) as exc:
            raise self._lost() from exc
        if not data and self._conn.is_closed() and self._process.exit_status is None:
            raise self._lost()
        return data

    async def finish(self) -> tuple[int, bytes]:
        import asyncssh

        try:
            await self._process.wait_closed()
        except (asyncssh.Error, OSError, EOFError) as exc:
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


class _LocalProcess(RemoteProcess):
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._doing = ""
        self._process = process
        self._stderr = bytearray()
        self._stderr_grew = asyncio.Event()
        self._stderr_task = asyncio.ensure_future(self._collect_stderr())

    @classmethod
    async def start(cls, script: str, home: str) -> _LocalProcess:
        process = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            script,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=home,
            start_new_session=True,
        )
        return cls(process)

    async def _collect_stderr(self) -> None:
        assert self._process.stderr is not None
        while chunk := await self._process.stderr.read(65536):
            self._add_stderr(chunk)

    async def write(self, data: bytes | memoryview) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(data)
            await self._process.stdin.drain()
        except ConnectionResetError as exc:
            raise BrokenPipeError("the command stopped reading") from exc

    async def write_eof(self) -> None:
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._process.stdin.close()

    async def read(self, size: int) -> bytes:
        assert self._process.stdout is not None
        return await self._process.stdout.read(size)

    async def finish(self) -> tuple[int, bytes]:
        status = await self._process.wait()
        await self._stderr_task
        if status < 0:
            status = exit_status_for_signal(-status)
        return status, bytes(self._stderr)

    def abort(self) -> None:
        import os
        import signal

        self._stderr_task.cancel()
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)
            _REAPING.add(reap := asyncio.ensure_future(self._process.wait()))
            reap.add_done_callback(_REAPING.discard)


_REAPING: set[asyncio.Future[int]] = set()
