"""Where gputui keeps its state on the laptop, the lock that keeps concurrent updates whole, and
the one way a state file is replaced."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transfer.errors import ConfigError


def home_path() -> Path:
    """``$GPUTUI_HOME``, else ``~/.config/gputui``; nothing is created."""
    return Path(os.environ.get("GPUTUI_HOME") or Path.home() / ".config" / "gputui")


def gputui_home() -> Path:
    """:func:`home_path`, created with mode 0700 on first use; one ConfigError line if it
    cannot be (a file in its place, no permission)."""
    home = home_path()
    what = "GPUTUI_HOME" if os.environ.get("GPUTUI_HOME") else "gputui's folder"
    ensure_folder(home, what)
    return home


def ensure_folder(folder: Path, what: str = "") -> None:
    """Create ``folder`` (mode 0700) unless it exists; a file in its place is one clear line."""
    named = f"{what} {folder}" if what else str(folder)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{named} is not a folder; move that file away") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {named}: {exc.strerror or exc}") from None


def hosts_file() -> Path:
    """The profiles file; the folder is made when it is first written."""
    return home_path() / "hosts.yaml"


def known_hosts_file() -> Path:
    """gputui's own known_hosts; the folder is made when a key is first trusted."""
    return home_path() / "known_hosts"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path.lock`` (beside ``path``) for one read-change-write.

    Every gputui process that updates ``path`` takes it, so two ``hosts add`` or two trusts
    running at once both keep their change. Readers need none: writers replace the file with a
    rename or append a whole line at once.
    """
    lock_path = path.with_name(path.name + ".lock")
    ensure_folder(lock_path.parent)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot lock {lock_path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def atomic_write(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` (text as UTF-8), created with ``mode``.

    A temp file beside it is written and fsynced, renamed over ``path``, and the folder fsynced:
    after a crash or power loss the file is the old one or the new one, never a part, so readers
    need no lock. The folder is made (mode 0700) when missing.
    """
    ensure_folder(path.parent)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    folder_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(folder_fd)
    finally:
        os.close(folder_fd)
