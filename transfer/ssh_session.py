"""The connection and command half of the SSH link: one asyncssh connection, kept alive.

A dropped connection is noticed by asyncssh (keepalive every 15 s, or the socket closing) and
the next operation reconnects, retrying under :data:`RECONNECT_BACKOFF` (0.5 s up to 8 s
between attempts, about a minute in all) before giving up with LinkLost. Operations that cannot
have had an effect yet (opening a channel, reading) are retried on the new connection; one that
may have half happened (a running command, a rename) raises LinkLost instead of running twice.
A loop of its own that rides out drops (a log follower) calls :meth:`connect`, one attempt, and
keeps the waiting to itself. Files over SFTP are added by :class:`transfer.ssh_link.SSHLink`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import asyncssh

from transfer.backoff import Backoff
from transfer.errors import (
    GputuiError,
    HostUnreachable,
    LinkLost,
    RemoteCommandFailed,
    RemoteFileError,
    RemoteFileNotFound,
)
from transfer.hosts import HostProfile
from transfer.known_hosts import HostKeyInfo
from transfer.link import CommandResult, Link, exit_status_for_signal, shown_path
from transfer.process import RemoteProcess
from transfer.ssh_connection import ConnectedHost, connect_host, fetch_presented_key
from transfer.ssh_process import start_ssh_process
from transfer.ssh_terminal import ssh_argv

T = TypeVar("T")
log = logging.getLogger("gputui.transfer")

STDERR_TAIL_LINES = 20
KILL_GRACE_S = 1.0  # the host's own kill comes this long after we stop waiting
#: Restoring a dropped connection before the operation that found it gives up.
RECONNECT_BACKOFF = Backoff(initial_s=0.5, factor=2.0, cap_s=8.0, deadline_s=60.0)
# What a connection that died mid-operation raises, besides the errors asyncssh maps itself.
TRANSPORT_ERRORS = (asyncssh.Error, OSError, EOFError, asyncio.IncompleteReadError)


class SSHSession(Link):
    """A host reached over SSH: the connection and commands on its channels."""

    backoff = RECONNECT_BACKOFF

    def __init__(self, host: HostProfile) -> None:
        super().__init__(host)
        self._route: ConnectedHost | None = None
        self._lost = False
        self._sftp: asyncssh.SFTPClient | None = None
        self._sftp_conn: asyncssh.SSHClientConnection | None = None
        self._home: str | None = None
        self._lock = asyncio.Lock()
        self._sftp_lock = asyncio.Lock()
        self.reconnects = 0

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def connection(self) -> asyncssh.SSHClientConnection:
        """The live asyncssh connection (its channels are this module's business alone)."""
        if self._route is None or not self.is_connected:
            raise LinkLost(f"not connected to {self.host.name}")
        return self._route.conn

    @property
    def is_connected(self) -> bool:
        return self._route is not None and not self._lost and not self._route.conn.is_closed()

    async def connect(self) -> None:
        async with self._lock:
            if not self.is_connected:
                await self._open()

    async def ensure_connected(self) -> None:
        """Return at once when connected; reconnect (with backoff) when the connection dropped."""
        if self.is_connected:
            return
        async with self._lock:
            if self.is_connected:
                return
            if self._route is None:
                await self._open()
            else:
                await self._reconnect()

    async def close(self) -> None:
        async with self._lock:
            route, self._route = self._route, None
            sftp, self._sftp, self._sftp_conn = self._sftp, None, None
            if sftp is not None:
                sftp.exit()
            if route is not None:
                await route.close()

    async def _open(self) -> None:
        route = await connect_host(self.host, on_lost=self._on_lost)
        old, self._route = self._route, route
        self._lost = False
        self._sftp, self._sftp_conn = None, None
        if old is not None:
            await old.close()

    async def _reconnect(self) -> None:
        loop = asyncio.get_running_loop()
        attempts = self.backoff.start(loop.time, failing=True)
        while True:
            try:
                await self._open()
            except (HostUnreachable, LinkLost) as exc:
                last: GputuiError = exc
            else:
                self.reconnects += 1
                log.info("reconnected to %s", self.host.name)
                return
            delay = attempts.next_delay()
            if delay is None:
                raise LinkLost(
                    f"lost the connection to {self.host.name} and could not restore it "
                    f"within {self.backoff.deadline_s:g} s: {last}"
                )
            log.info("reconnecting to %s in %.1f s: %s", self.host.name, delay, last)
            await asyncio.sleep(delay)

    def _on_lost(self, conn: asyncssh.SSHClientConnection) -> None:
        if self._route is not None and conn is self._route.conn:
            self._lost = True

    def _is_dead(self, conn: asyncssh.SSHClientConnection) -> bool:
        return conn.is_closed() or (
            self._route is not None and conn is self._route.conn and self._lost
        )

    async def _call(
        self,
        what: str,
        op: Callable[[asyncssh.SSHClientConnection], Awaitable[T]],
        *,
        retry: bool,
        path: str | None = None,
    ) -> T:
        """Run ``op`` on a live connection; on a drop reconnect and (if ``retry``) run it again."""
        for attempt in (1, 2):
            await self.ensure_connected()
            assert self._route is not None
            conn = self._route.conn
            try:
                return await op(conn)
            except GputuiError:
                raise
            except TRANSPORT_ERRORS as exc:
                if not self._is_dead(conn) and not is_connection_loss(exc):
                    raise self._error(what, path, exc) from None
            self._on_lost(conn)
            if not retry or attempt == 2:
                raise LinkLost(
                    f"the connection to {self.host.name} dropped during {what}; "
                    "the next operation reconnects"
                )
        raise AssertionError("unreachable")

    async def _guard(self, what: str, path: str, work: Awaitable[T]) -> T:
        """Map errors of an operation on an already open channel or file (never retried)."""
        conn = self._route.conn if self._route is not None else None
        try:
            return await work
        except TRANSPORT_ERRORS as exc:
            if (conn is not None and self._is_dead(conn)) or is_connection_loss(exc):
                if conn is not None:
                    self._on_lost(conn)
                raise LinkLost(
                    f"the connection to {self.host.name} dropped during {what} of "
                    f"{shown_path(path)}; the next operation reconnects"
                ) from None
            raise self._error(what, path, exc) from None

    def _error(self, what: str, path: str | None, exc: BaseException) -> GputuiError:
        name = self.host.name
        shown = shown_path(path) if path is not None else ""
        if isinstance(exc, (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath)):
            return RemoteFileNotFound(f"{name}: no such file or folder: {shown}")
        if isinstance(exc, asyncssh.SFTPPermissionDenied):
            return RemoteFileError(f"{name}: cannot {what} {shown}: permission denied")
        if isinstance(exc, (asyncssh.SFTPNoSpaceOnFilesystem, asyncssh.SFTPQuotaExceeded)):
            return RemoteFileError(f"{name}: cannot {what} {shown}: no space left")
        if isinstance(exc, asyncssh.SFTPError):
            return RemoteFileError(f"{name}: cannot {what} {shown}: {exc.reason or 'failure'}")
        if isinstance(exc, asyncssh.ChannelOpenError):
            return RemoteCommandFailed(f"{name}: cannot {what}: {exc.reason}")
        reason = getattr(exc, "reason", "") or str(exc) or type(exc).__name__
        return RemoteFileError(f"{name}: cannot {what} {shown}: {reason}".replace("  ", " "))

    # -- commands --------------------------------------------------------------------------
    async def _start(
        self, command: str, *, stdin: bool, kill_after: float | None = None
    ) -> asyncssh.SSHClientProcess[bytes]:
        """Open a channel running ``sh -c command`` (the login shell may not be POSIX).

        With ``kill_after``, the host itself kills the command (and its children) after that
        many seconds when coreutils ``timeout`` is there: sshd ignores signal requests for
        root logins, which are common on rented GPU machines.
        """
        remote = f"sh -c {shlex.quote(command)}"
        if kill_after is not None:
            remote = (
                "command -v timeout >/dev/null 2>&1 && "
                f"exec timeout -s KILL {kill_after:.3f} {remote}; exec {remote}"
            )

        async def start(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHClientProcess[bytes]:
            return await conn.create_process(
                remote, encoding=None, stdin=asyncssh.PIPE if stdin else asyncssh.DEVNULL
            )

        return await self._call(f"starting `{command[:60]}`", start, retry=True)

    async def run(
        self,
        command: str,
        *,
        input: bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> CommandResult:
        """Run on the host; a timeout raises RemoteCommandFailed and stops the command."""
        kill_after = timeout + KILL_GRACE_S if timeout is not None else None
        process = await self._start(command, stdin=input is not None, kill_after=kill_after)
        try:
            stdout, stderr = await asyncio.wait_for(
                self._guard("run", command[:60], process.communicate(input)), timeout
            )
        except TimeoutError:
            with contextlib.suppress(*TRANSPORT_ERRORS):
                process.kill()
            process.close()
            raise RemoteCommandFailed(
                f"`{command[:80]}` did not finish within {timeout:g} s on {self.host.name}"
            ) from None
        except BaseException:
            process.close()
            raise
        result = CommandResult(
            command=command,
            exit_status=self._exit_status(process, command),
            stdout=bytes(stdout or b"").decode("utf-8", errors="replace"),
            stderr=bytes(stderr or b"").decode("utf-8", errors="replace"),
        )
        return result.check() if check else result

    def _exit_status(self, process: asyncssh.SSHClientProcess[bytes], command: str) -> int:
        if process.exit_status is not None:
            return process.exit_status
        if process.exit_signal is not None:
            return exit_status_for_signal(process.exit_signal[0])
        if self._route is not None and self._is_dead(self._route.conn):
            raise LinkLost(
                f"the connection to {self.host.name} dropped while `{command[:60]}` ran; "
                "the next operation reconnects"
            )
        return 255  # what ssh(1) reports when the server sends no exit status

    async def stream(self, command: str) -> AsyncIterator[str]:
        """Lines of stdout as they come; a non-zero exit raises RemoteCommandFailed at the end.

        Leaving the loop early closes the channel, which stops the command on its next write.
        """
        process = await self._start(command, stdin=False)
        tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        drain = asyncio.ensure_future(collect_lines(process.stderr, tail))
        try:
            while True:
                raw = await self._guard("stream", command[:60], process.stdout.readline())
                if not raw:
                    break
                yield bytes(raw).decode("utf-8", errors="replace").rstrip("\n")
            await self._guard("stream", command[:60], process.wait_closed())
            with contextlib.suppress(*TRANSPORT_ERRORS):
                await drain
        finally:
            process.close()
            drain.cancel()
        status = self._exit_status(process, command)
        if status != 0:
            last = f": {tail[-1]}" if tail else ""
            raise RemoteCommandFailed(f"`{command[:80]}` exited {status}{last}")

    async def start_process(
        self, script: str, *, doing: str, receive_window: int | None = None
    ) -> RemoteProcess:
        await self.ensure_connected()
        return await start_ssh_process(
            self.connection, self.host.name, script, doing, receive_window
        )

    def terminal_argv(self, argv: list[str]) -> list[str]:
        """``ssh -t`` to the host running ``argv``: the system ``ssh`` owns a terminal properly."""
        return ssh_argv(self.host, shlex.join(argv))

    async def presented_host_key(self) -> HostKeyInfo:
        return await fetch_presented_key(self.host)


def is_connection_loss(exc: BaseException) -> bool:
    return isinstance(
        exc,
        (
            asyncssh.ConnectionLost,
            asyncssh.SFTPConnectionLost,
            asyncssh.SFTPNoConnection,
            BrokenPipeError,
            ConnectionResetError,
        ),
    )


async def collect_lines(reader: asyncssh.SSHReader[bytes], tail: deque[str]) -> None:
    with contextlib.suppress(*TRANSPORT_ERRORS):
        async for raw in reader:
            if line := bytes(raw).decode("utf-8", errors="replace").strip():
                tail.append(line)
