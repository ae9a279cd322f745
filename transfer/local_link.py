"""The link to this machine: ``/bin/sh -c`` subprocesses and the local filesystem.

It behaves like an SSH link to a host whose home is ``$HOME``: commands start in the home
folder, relative paths are relative to it, and failures raise the same errors. File work runs in
worker threads so the event loop that draws the screen never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat as stat_module
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, TypeVar

from transfer.errors import ConfigError, RemoteCommandFailed, RemoteFileError, RemoteFileNotFound
from transfer.hosts import HostProfile
from transfer.link import (
    CommandResult,
    FileStat,
    Link,
    LinkFile,
    exit_status_for_signal,
    shown_path,
)
from transfer.process import RemoteProcess

if TYPE_CHECKING:
    from transfer.known_hosts import HostKeyInfo

T = TypeVar("T")

READ_CHUNK = 1024 * 1024
LINE_LIMIT = 8 * 1024 * 1024  # a longer line than this is not a log line
STDERR_TAIL_LINES = 20
_OPEN_FLAGS = {
    "rb": os.O_RDONLY,
    "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "r+b": os.O_RDWR,
}


class LocalFile(LinkFile):
    """A file descriptor read and written with pread/pwrite in a worker thread."""

    def __init__(self, fd: int, path: str, host: str, appending: bool) -> None:
        self._fd: int | None = fd
        self._path = path
        self._host = host
        self._appending = appending
        self._position = 0

    def _descriptor(self) -> int:
        if self._fd is None:
            raise ValueError("I/O operation on closed file")
        return self._fd

    async def read(self, size: int = -1, offset: int | None = None) -> bytes:
        fd = self._descriptor()
        start = self._position if offset is None else offset

        def read_range() -> bytes:
            if size >= 0:
                return os.pread(fd, size, start)
            parts = []
            at = start
            while chunk := os.pread(fd, READ_CHUNK, at):
                parts.append(chunk)
                at += len(chunk)
            return b"".join(parts)

        data = await _in_thread(self._host, "read", self._path, read_range)
        self._position = start + len(data)
        return data

    async def write(self, data: bytes, offset: int | None = None) -> int:
        fd = self._descriptor()
        start = self._position if offset is None else offset

        def write_all() -> None:
            view = memoryview(data)
            at = start
            while view:
                written = os.write(fd, view) if self._appending else os.pwrite(fd, view, at)
                view = view[written:]
                at += written

        await _in_thread(self._host, "write", self._path, write_all)
        self._position = start + len(data)
        return len(data)

    async def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            await asyncio.to_thread(os.close, fd)


class LocalLink(Link):
    """The built-in ``local`` host: no server, no keys, same interface as SSH."""

    # This very interpreter runs gputui, so it can sample the GPUs here.
    sampler_pythons = (sys.executable,)
    has_host_key = False

    def __init__(self, host: HostProfile) -> None:
        super().__init__(host)
        self._home: str | None = None

    async def connect(self) -> None:
        await self.home()

    async def close(self) -> None:
        return None

    # -- commands --------------------------------------------------------------------------
    async def run(
        self,
        command: str,
        *,
        input: bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> CommandResult:
        """Run through ``/bin/sh -c`` in the home folder; a timeout kills the whole group."""
        process = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=await self.home(),
            start_new_session=True,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(input), timeout)
        except TimeoutError:
            await _kill_group(process)
            raise RemoteCommandFailed(
                f"`{command[:80]}` did not finish within {timeout:g} s on {self.host.name}"
            ) from None
        except BaseException:
            await _kill_group(process)
            raise
        status = process.returncode if process.returncode is not None else 255
        if status < 0:
            status = exit_status_for_signal(-status)
        result = CommandResult(
            command=command,
            exit_status=status,
            stdout=stdout.decode("utf-8", errors="replace"),
            stderr=stderr.decode("utf-8", errors="replace"),
        )
        return result.check() if check else result

    async def stream(self, command: str) -> AsyncIterator[str]:
        """Lines of stdout as they come; a non-zero exit raises RemoteCommandFailed at the end.

        Leaving the loop early stops the command (its whole process group).
        """
        process = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=await self.home(),
            start_new_session=True,
            limit=LINE_LIMIT,
        )
        assert process.stdout is not None and process.stderr is not None
        tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        drain = asyncio.ensure_future(_collect_lines(process.stderr, tail))
        try:
            while line := await process.stdout.readline():
                yield line.decode("utf-8", errors="replace").rstrip("\n")
            status = await process.wait()
            await drain
        finally:
            if process.returncode is None:
                await _kill_group(process)
            drain.cancel()
        if status != 0:
            if status < 0:
                status = exit_status_for_signal(-status)
            last = f": {tail[-1]}" if tail else ""
            raise RemoteCommandFailed(f"`{command[:80]}` exited {status}{last}")

    async def start_process(
        self, script: str, *, doing: str, receive_window: int | None = None
    ) -> RemoteProcess:
        """A ``/bin/sh`` subprocess in its own process group; a pipe bounds what is in flight."""
        process = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            script,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=await self.home(),
            start_new_session=True,
        )
        return LocalProcess(self.host.name, doing, process)

    def terminal_argv(self, argv: list[str]) -> list[str]:
        """The command itself: the person's terminal is already on this machine."""
        return list(argv)

    async def presented_host_key(self) -> HostKeyInfo:
        raise ConfigError(f"{self.host.name} is this machine: it has no SSH host key")

    # -- files -----------------------------------------------------------------------------
    async def home(self) -> str:
        if self._home is None:
            self._home = os.path.expanduser("~")
        return self._home

    async def _path(self, path: str) -> str:
        path = await self.expand(path)
        if not os.path.isabs(path):
            path = os.path.join(await self.home(), path)
        return path

    async def stat(self, path: str, *, follow_symlinks: bool = True) -> FileStat:
        full = await self._path(path)
        st = await _in_thread(
            self.host.name, "stat", path, lambda: os.stat(full, follow_symlinks=follow_symlinks)
        )
        return FileStat(
            path=path,
            size=st.st_size,
            mtime=st.st_mtime,
            mode=st.st_mode,
            is_dir=stat_module.S_ISDIR(st.st_mode),
            is_symlink=stat_module.S_ISLNK(st.st_mode),
        )

    async def listdir(self, path: str) -> list[str]:
        full = await self._path(path)
        return sorted(await _in_thread(self.host.name, "list", path, lambda: os.listdir(full)))

    async def open(self, path: str, mode: str = "rb") -> LinkFile:
        if mode not in _OPEN_FLAGS:
            raise ValueError(f"unsupported mode {mode!r}; use one of {', '.join(_OPEN_FLAGS)}")
        full = await self._path(path)
        flags = _OPEN_FLAGS[mode] | getattr(os, "O_CLOEXEC", 0)
        fd = await _in_thread(self.host.name, "open", path, lambda: os.open(full, flags, 0o666))
        return LocalFile(fd, path, self.host.name, appending=mode == "ab")

    async def rename(self, src: str, dst: str) -> None:
        full_src, full_dst = await self._path(src), await self._path(dst)
        await _in_thread(self.host.name, "rename", src, lambda: os.replace(full_src, full_dst))

    async def mkdir(self, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
        full = await self._path(path)

        def make() -> None:
            if os.path.lexists(full):
                if exist_ok and os.path.isdir(full):
                    return
                raise FileExistsError(f"{shown_path(path)} already exists")
            if parents:
                os.makedirs(full, exist_ok=True)
            else:
                os.mkdir(full)

        await _in_thread(self.host.name, "create folder", path, make)

    async def remove(self, path: str) -> None:
        full = await self._path(path)

        def remove_one() -> None:
            if stat_module.S_ISDIR(os.lstat(full).st_mode):
                os.rmdir(full)
            else:
                os.unlink(full)

        await _in_thread(self.host.name, "remove", path, remove_one)


async def _in_thread(host: str, what: str, path: str, work: Callable[[], T]) -> T:
    """Run blocking file work in a thread, turning OSErrors into one-line link errors."""
    try:
        return await asyncio.to_thread(work)
    except FileNotFoundError:
        raise RemoteFileNotFound(f"{host}: no such file or folder: {shown_path(path)}") from None
    except FileExistsError:
        raise RemoteFileError(
            f"{host}: cannot {what} {shown_path(path)}: it already exists"
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RemoteFileError(f"{host}: cannot {what} {shown_path(path)}: {reason}") from None


async def _collect_lines(reader: asyncio.StreamReader, tail: deque[str]) -> None:
    with contextlib.suppress(ValueError, asyncio.LimitOverrunError):
        while raw := await reader.readline():
            if line := raw.decode("utf-8", errors="replace").strip():
                tail.append(line)


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """Stop the command and everything it started, then reap it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        await process.wait()


class LocalProcess(RemoteProcess):
    """A subprocess as a binary pipe; aborting kills its whole process group."""

    def __init__(self, host: str, doing: str, process: asyncio.subprocess.Process) -> None:
        super().__init__(host, doing)
        self._process = process
        self._stderr_task = asyncio.ensure_future(self._collect_stderr())

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
        self._stderr_task.cancel()
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)
            _REAPING.add(reap := asyncio.ensure_future(self._process.wait()))
            reap.add_done_callback(_REAPING.discard)


_REAPING: set[asyncio.Future[int]] = set()
