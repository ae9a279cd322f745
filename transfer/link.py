"""One async interface to a host, with two implementations: SSH (asyncssh) and the local machine.

Everything else in transfer/ is written once against :class:`Link`, so the whole loop works on a
laptop's own GPU with no server. Paths on the host are POSIX strings; a leading ``~`` means the
home folder of the account we log in as. What differs between kinds of host (how a terminal
reaches it, whether it has a host key) is answered by the link too, never by its callers; the
kinds themselves are registered in :mod:`transfer.connect`.
"""

from __future__ import annotations

import abc
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from transfer.errors import RemoteCommandFailed
from transfer.hosts import HostProfile

if TYPE_CHECKING:
    from transfer.known_hosts import HostKeyInfo
    from transfer.process import RemoteProcess


def shown_path(path: str) -> str:
    """A path for a one-line message: quoted when it holds newlines or other control bytes."""
    return path if path.isprintable() else repr(path)


def exit_status_for_signal(name_or_number: str | int) -> int:
    """What a POSIX shell reports for a command killed by a signal: 128 + its number."""
    if isinstance(name_or_number, int):
        return 128 + name_or_number
    name = name_or_number.upper()
    try:
        return 128 + signal.Signals[name if name.startswith("SIG") else f"SIG{name}"].value
    except KeyError:
        return 255


@dataclass(frozen=True)
class CommandResult:
    """What a finished command left behind."""

    command: str
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def check(self) -> CommandResult:
        """Return self when the command succeeded, else raise with its last stderr line."""
        if not self.ok:
            last = (self.stderr.strip().splitlines() or [""])[-1]
            raise RemoteCommandFailed(
                f"`{self.command[:80]}` exited {self.exit_status}" + (f": {last}" if last else "")
            )
        return self


@dataclass(frozen=True)
class FileStat:
    """The few attributes of a file that sync and jobs need."""

    path: str
    size: int
    mtime: float
    mode: int
    is_dir: bool
    is_symlink: bool


class LinkFile(abc.ABC):
    """An open file on the host, read and written at explicit offsets."""

    @abc.abstractmethod
    async def read(self, size: int = -1, offset: int | None = None) -> bytes: ...

    @abc.abstractmethod
    async def write(self, data: bytes, offset: int | None = None) -> int: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> LinkFile:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Link(abc.ABC):
    """A live connection to one host. Use as ``async with connect(host) as link:``."""

    #: Interpreters known to have gputui on this kind of host, tried before the usual ones when
    #: looking for the GPU sampler there.
    sampler_pythons: tuple[str, ...] = ()
    #: Whether the host proves itself with an SSH host key that the person may trust.
    has_host_key: bool = True

    def __init__(self, host: HostProfile) -> None:
        self.host = host

    # -- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the connection; raises a GputuiError that says why it could not."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def ensure_connected(self) -> None:
        """Make sure the link is usable now (an SSH link reconnects, with backoff)."""
        return None

    @property
    def is_connected(self) -> bool:
        """Whether the link is usable without reconnecting (always, for this machine)."""
        return True

    async def __aenter__(self) -> Link:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- commands --------------------------------------------------------------------------
    @abc.abstractmethod
    async def run(
        self,
        command: str,
        *,
        input: bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> CommandResult:
        """Run ``command`` through the host's shell (``sh -c``); the caller quotes arguments."""

    @abc.abstractmethod
    def stream(self, command: str) -> AsyncIterator[str]:
        """Yield the command's stdout lines (without the newline) as they arrive."""

    @abc.abstractmethod
    async def start_process(
        self, script: str, *, doing: str, receive_window: int | None = None
    ) -> RemoteProcess:
        """Start ``sh -c script`` in the home folder as a binary pipe (stdin, stdout, stderr).

        ``doing`` names the work in errors; ``receive_window`` bounds how many bytes of stdout
        may be in flight (a channel's window; a pipe has its own). A lost connection raises
        LinkLost here and from the process.
        """

    @abc.abstractmethod
    def terminal_argv(self, argv: list[str]) -> list[str]:
        """What to run in the person's terminal to run ``argv`` interactively on the host."""

    @abc.abstractmethod
    async def presented_host_key(self) -> HostKeyInfo:
        """The key the host presents now; ConfigError for a host that has none."""

    # -- files -----------------------------------------------------------------------------
    @abc.abstractmethod
    async def home(self) -> str:
        """The absolute home folder on the host."""

    async def expand(self, path: str) -> str:
        """``~`` and ``~/x`` become absolute; other paths are returned as they are."""
        if path == "~" or path.startswith("~/"):
            return (await self.home()).rstrip("/") + path[1:]
        return path

    @abc.abstractmethod
    async def stat(self, path: str, *, follow_symlinks: bool = True) -> FileStat:
        """Raises FileNotFoundError when there is nothing at ``path``."""

    async def exists(self, path: str) -> bool:
        try:
            await self.stat(path)
        except FileNotFoundError:
            return False
        return True

    @abc.abstractmethod
    async def listdir(self, path: str) -> list[str]:
        """Names in a folder, without ``.`` and ``..``."""

    @abc.abstractmethod
    async def open(self, path: str, mode: str = "rb") -> LinkFile:
        """Open a file: modes ``rb``, ``wb``, ``ab``, ``r+b``."""

    async def read_bytes(self, path: str) -> bytes:
        async with await self.open(path, "rb") as f:
            return await f.read()

    async def write_bytes(self, path: str, data: bytes) -> None:
        async with await self.open(path, "wb") as f:
            await f.write(data)

    @abc.abstractmethod
    async def rename(self, src: str, dst: str) -> None:
        """Rename, replacing ``dst`` if it exists (POSIX rename semantics)."""

    @abc.abstractmethod
    async def mkdir(self, path: str, *, parents: bool = True, exist_ok: bool = True) -> None: ...

    @abc.abstractmethod
    async def remove(self, path: str) -> None:
        """Remove a file, a symlink or an empty folder."""
