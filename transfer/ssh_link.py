"""The link to a host over SSH (asyncssh): commands on channels, files over one SFTP session.

The connection, its reconnects and the commands are :class:`transfer.ssh_session.SSHSession`;
this adds the files, read and written over the connection's one SFTP session.
"""

from __future__ import annotations

import contextlib
import stat as stat_module
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncssh

from transfer.errors import RemoteFileError
from transfer.link import FileStat, LinkFile, shown_path
from transfer.ssh_session import TRANSPORT_ERRORS, SSHSession

T = TypeVar("T")

_SFTP_MODES = {"rb", "wb", "ab", "r+b"}


class SSHFile(LinkFile):
    """An SFTP file handle; errors become one-line link errors."""

    def __init__(self, link: SSHLink, handle: asyncssh.SFTPClientFile, path: str) -> None:
        self._link = link
        self._handle = handle
        self._path = path

    async def read(self, size: int = -1, offset: int | None = None) -> bytes:
        data: object = await self._link._guard("read", self._path, self._handle.read(size, offset))
        assert isinstance(data, bytes)  # opened in a binary mode
        return data

    async def write(self, data: bytes, offset: int | None = None) -> int:
        return await self._link._guard("write", self._path, self._handle.write(data, offset))

    async def close(self) -> None:
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await self._handle.close()


class SSHLink(SSHSession):
    """A host reached over SSH: commands on channels, files over the one SFTP session."""

    async def _sftp_on(self, conn: asyncssh.SSHClientConnection) -> asyncssh.SFTPClient:
        """The link's one SFTP session, opened on first use (and again after a reconnect)."""
        async with self._sftp_lock:
            if self._sftp is None or self._sftp_conn is not conn:
                self._sftp = await conn.start_sftp_client(path_errors="surrogateescape")
                self._sftp_conn = conn
            return self._sftp

    async def _sftp_call(
        self,
        what: str,
        path: str,
        op: Callable[[asyncssh.SFTPClient], Awaitable[T]],
        *,
        retry: bool,
    ) -> T:
        async def on(conn: asyncssh.SSHClientConnection) -> T:
            return await op(await self._sftp_on(conn))

        return await self._call(what, on, retry=retry, path=path)

    async def home(self) -> str:
        if self._home is None:
            self._home = await self._sftp_call(
                "find home", "~", lambda sftp: sftp.realpath("."), retry=True
            )
        return self._home

    async def stat(self, path: str, *, follow_symlinks: bool = True) -> FileStat:
        full = await self.expand(path)

        async def stat(sftp: asyncssh.SFTPClient) -> asyncssh.SFTPAttrs:
            return await (sftp.stat(full) if follow_symlinks else sftp.lstat(full))

        attrs = await self._sftp_call("stat", path, stat, retry=True)
        mode = attrs.permissions or 0
        return FileStat(
            path=path,
            size=attrs.size or 0,
            mtime=float(attrs.mtime or 0),
            mode=mode,
            is_dir=stat_module.S_ISDIR(mode),
            is_symlink=stat_module.S_ISLNK(mode),
        )

    async def listdir(self, path: str) -> list[str]:
        full = await self.expand(path)

        async def names(sftp: asyncssh.SFTPClient) -> list[str]:
            return [str(n) for n in await sftp.listdir(full) if n not in (".", "..")]

        return sorted(await self._sftp_call("list", path, names, retry=True))

    async def open(self, path: str, mode: str = "rb") -> LinkFile:
        if mode not in _SFTP_MODES:
            raise ValueError(f"unsupported mode {mode!r}; use one of {', '.join(_SFTP_MODES)}")
        full = await self.expand(path)

        async def open_file(sftp: asyncssh.SFTPClient) -> asyncssh.SFTPClientFile:
            return await sftp.open(full, mode)

        # Opening for reading has no effect on the host, so it is safe to retry.
        handle = await self._sftp_call("open", path, open_file, retry=mode == "rb")
        return SSHFile(self, handle, path)

    async def rename(self, src: str, dst: str) -> None:
        full_src, full_dst = await self.expand(src), await self.expand(dst)

        async def rename(sftp: asyncssh.SFTPClient) -> None:
            await sftp.posix_rename(full_src, full_dst)

        await self._sftp_call("rename", src, rename, retry=False)

    async def mkdir(self, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
        full = await self.expand(path)

        async def make(sftp: asyncssh.SFTPClient) -> None:
            try:
                attrs = await sftp.lstat(full)
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                attrs = None
            if attrs is not None:
                is_dir = stat_module.S_ISDIR(attrs.permissions or 0)
                if not is_dir and stat_module.S_ISLNK(attrs.permissions or 0):
                    is_dir = await sftp.isdir(full)
                if exist_ok and is_dir:
                    return
                raise RemoteFileError(
                    f"{self.host.name}: cannot create folder {shown_path(path)}: it already exists"
                )
            if parents:
                await sftp.makedirs(full, exist_ok=True)
            else:
                await sftp.mkdir(full)

        await self._sftp_call("create folder", path, make, retry=True)

    async def remove(self, path: str) -> None:
        full = await self.expand(path)

        async def remove(sftp: asyncssh.SFTPClient) -> None:
            attrs = await sftp.lstat(full)
            if stat_module.S_ISDIR(attrs.permissions or 0):
                await sftp.rmdir(full)
            else:
                await sftp.remove(full)

        await self._sftp_call("remove", path, remove, retry=False)
