"""The keeper process: a Unix socket server that runs pushes and pulls on kept connections.

One request per client connection, a JSON line; the answer is JSON lines: shown events, then a
``result`` or an ``error`` (message and exit code). A client that goes away stops its transfer.
Requests that name the same transfer wait for each other, so a command that was killed and is
run again never overlaps what is left of its first run. Each request reads the host profiles
afresh: an edited profile gets a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transfer.connect import open_link
from transfer.errors import GputuiError
from transfer.hosts import HostProfile, HostStore
from transfer.keeper.address import log_path
from transfer.link import Link
from transfer.sync.engine import Sync, SyncRequest, request_from_fields
from transfer.sync.events import SyncEvent, SyncResult, event_to_json
from transfer.sync.remote import RemoteProcess

log = logging.getLogger(__name__)


@dataclass
class _Kept:
    """A connection to one host, and the shell the last sync left waiting there."""

    profile: HostProfile
    link: Link
    shells: list[RemoteProcess] = field(default_factory=list)

    async def close(self) -> None:
        for shell in self.shells:
            shell.abort()
        with contextlib.suppress(Exception):
            await self.link.close()


class Keeper:
    def __init__(self, socket_path: Path, idle_s: float) -> None:
        self.socket_path = socket_path
        self.idle_s = idle_s
        self._kept: dict[str, _Kept] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self._same_transfer: dict[tuple[str, str], asyncio.Lock] = {}
        self._active = 0
        self._last_used = time.monotonic()
        self._quit = asyncio.Event()

    async def serve(self) -> None:
        server = await asyncio.start_unix_server(self._handle, str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        try:
            while not self._quit.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._quit.wait()
                if self._active == 0 and time.monotonic() - self._last_used > self.idle_s:
                    break
        finally:
            server.close()
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            for kept in self._kept.values():
                await kept.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._active += 1
        try:
            message = json.loads(await reader.readline() or b"{}")
            if message.get("op") == "quit":
                self._quit.set()
                writer.write(b'{"ok": true}\n')
            elif message.get("op") == "sync":
                await self._sync(message, reader, writer)
            await writer.drain()
        except (ConnectionError, json.JSONDecodeError) as exc:
            log.info("dropped a client: %s", exc)
        finally:
            self._active -= 1
            self._last_used = time.monotonic()
            writer.close()

    async def _sync(
        self, message: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        def send(reply: dict[str, Any]) -> None:
            writer.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")

        def on_event(event: SyncEvent) -> None:
            shown = event_to_json(event)
            if shown is not None:
                send(shown)

        try:
            profile = HostStore().get(str(message["host"]))
            request = request_from_fields(message["request"], profile)
            key = (profile.name, f"{request.direction} {request.local} {request.remote}")
            async with self._same_transfer.setdefault(key, asyncio.Lock()):
                result = await self._run(profile, request, on_event, reader)
            if result is not None:
                send({"result": result})
        except GputuiError as exc:
            send({"error": str(exc), "exit_code": exc.exit_code})
        except Exception as exc:
            log.error("a %s failed:\n%s", message.get("request", {}).get("direction"),
                      traceback.format_exc())
            send({"error": f"the connection keeper failed: {exc!r} (its log: "
                  f"{log_path(self.socket_path)})", "exit_code": 1})

    async def _run(
        self, profile: HostProfile, request: SyncRequest, on_event: Any,
        reader: asyncio.StreamReader,
    ) -> dict[str, Any] | None:
        """The sync's result; None when the client went away first (connecting or syncing
        is then stopped, so a re-run does not wait for a host that does not answer)."""
        work = asyncio.ensure_future(self._sync_on_kept_link(profile, request, on_event))
        gone = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not work.done():
                work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
        if work.cancelled():
            return None
        return work.result().to_json()

    async def _sync_on_kept_link(
        self, profile: HostProfile, request: SyncRequest, on_event: Any
    ) -> SyncResult:
        kept = await self._link_for(profile)
        shells, kept.shells = kept.shells, []
        sync = Sync(kept.link, request, on_event, shells=shells, keep_shell=True)
        try:
            return await sync.run()
        finally:
            kept.shells = sync.kept_shells
            sync.shell.close_ready()  # the shells handed over, if the sync never started

    async def _link_for(self, profile: HostProfile) -> _Kept:
        """The kept connection to this host, or a new one when there is none, it dropped, or
        the profile changed since it was opened."""
        async with self._connecting.setdefault(profile.name, asyncio.Lock()):
            kept = self._kept.get(profile.name)
            if kept is not None and kept.profile == profile and kept.link.is_connected:
                return kept
            if kept is not None:
                del self._kept[profile.name]
                await kept.close()
            link = open_link(profile)
            await link.connect()
            kept = self._kept[profile.name] = _Kept(profile, link)
            return kept


def run(socket_path: Path, idle_s: float) -> int:
    """Serve until idle; exit 0 at once when another keeper holds this socket's lock."""
    lock = os.open(socket_path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()  # a keeper that was killed left it; we hold the lock
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # a line per channel otherwise
    log.info("keeper %d on %s, ending after %g s idle", os.getpid(), socket_path, idle_s)
    asyncio.run(Keeper(socket_path, idle_s).serve())
    log.info("keeper %d ends", os.getpid())
    return 0
