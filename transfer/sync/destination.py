"""The destination of a pull, written only through folder descriptors: no link is followed.

A host decides the names, and another local user may plant links inside a world-writable
folder that an earlier pull brought. So nothing here resolves a path: each folder is opened
from its parent's descriptor with ``O_NOFOLLOW | O_DIRECTORY`` (a link anywhere on the way is
refused), a file is written into a new ``.part`` (``O_CREAT | O_EXCL | O_NOFOLLOW``, a random
name), its mode and times are set on its own descriptor, and the rename that puts it in place
replaces whatever sits at the final name (a link included) instead of following it. Only the
destination root itself is reached by its path: the person named it.

A few dozen folder descriptors stay open while a pull runs (most recently used first), so a
file costs no more system calls than a path-based write would.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from transfer.errors import GputuiError
from transfer.sync.context import clamp_mtime
from transfer.sync.errors import LinkInTheWay, NoSpaceLeft, PermissionDeniedError
from transfer.sync.manifest import PART_NAME, Entry, part_name

OPEN_FOLDERS = 64
IN_THE_WAY = "a folder appeared here during the pull; left as it is, not stored"
# O_PATH (Linux): a folder is usable as ``dir_fd`` without read permission on it.
_FOLDER_FLAGS = (
    getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW
    | getattr(os, "O_CLOEXEC", 0)
)
_NEW_FILE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
)
_OLD_PART_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def local_umask() -> int:
    """This process's umask, read without changing it (``os.umask`` sets it for every thread
    for a moment)."""
    with (
        contextlib.suppress(OSError, ValueError),
        open("/proc/self/status", encoding="ascii", errors="replace") as status,
    ):
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def pull_mode_mask(umask: int | None = None) -> int:
    """The mode bits a pulled file or folder may keep: ``mode & pull_mode_mask()``.

    Only the permission bits: setuid, setgid and sticky are dropped, so a host cannot plant a
    setuid program on this machine. And the umask masks them as ``cp`` does without ``-p``:
    with the usual 022 group and other lose write, so a host's 0777 folder or 0666 file does
    not become writable by every local user.
    """
    return 0o777 & ~(local_umask() if umask is None else umask)


@dataclass
class _Folder:
    fd: int
    users: int = 0


def split(rel: str) -> tuple[str, str]:
    """``(folder, name)`` of a relative path; the folder of a top-level name is ``""``."""
    folder, _, name = rel.rpartition("/")
    return folder, name


class LocalTree:
    """The destination folder, open; every method takes paths relative to it.

    Thread-safe: batches unpack and big files stream in worker threads at once.
    """

    def __init__(self, root: str, *, open_folders: int = OPEN_FOLDERS) -> None:
        self.root = root
        self._limit = open_folders
        self._lock = threading.Lock()
        self._folders: OrderedDict[str, _Folder] = OrderedDict()
        self._closing = False

    def open(self) -> None:
        os.makedirs(self.root, exist_ok=True)
        fd = os.open(self.root, _FOLDER_FLAGS & ~os.O_NOFOLLOW)  # the root: named by the person
        with self._lock:
            self._closing = False
            self._folders[""] = _Folder(fd, users=1)  # held until close()

    def close(self) -> None:
        """Close the folders; one a worker thread still holds (a cancelled pull) is closed
        when it lets go, never under its feet."""
        with self._lock:
            self._closing = True
            if "" in self._folders:
                self._folders[""].users -= 1
            for rel, folder in list(self._folders.items()):
                if folder.users <= 0:
                    os.close(folder.fd)
                    del self._folders[rel]

    def path(self, rel: str) -> str:
        return f"{self.root.rstrip('/')}/{rel}" if rel else self.root

    # -- folders -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def folder(self, rel: str) -> Iterator[int]:
        """The descriptor of folder ``rel``, opened component by component without following
        a link; held open while the block runs."""
        held = self._acquire(rel)
        try:
            yield held.fd
        finally:
            with self._lock:
                held.users -= 1
                if self._closing and held.users <= 0 and self._folders.get(rel) is held:
                    os.close(held.fd)
                    del self._folders[rel]

    def _acquire(self, rel: str) -> _Folder:
        with self._lock:
            held = self._folders.get(rel)
            if held is not None:
                held.users += 1
                self._folders.move_to_end(rel)
                return held
        if not rel:
            raise ValueError("the destination is not open")
        parent, name = split(rel)
        with self.folder(parent) as parent_fd:
            try:
                fd = os.open(name, _FOLDER_FLAGS, dir_fd=parent_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise LinkInTheWay(
                        f"local:{self.path(rel)} is a link or a file where a folder goes; "
                        "a pull never writes through one"
                    ) from None
                raise
        with self._lock:
            held = self._folders.get(rel)
            if held is not None:  # another thread opened it meanwhile
                os.close(fd)
            else:
                held = self._folders[rel] = _Folder(fd)
                self._close_unused()
            held.users += 1
            return held

    def _close_unused(self) -> None:
        """Close the least recently used folders beyond the limit (those nobody holds)."""
        excess = len(self._folders) - self._limit
        for rel in list(self._folders):
            if excess <= 0:
                break
            held = self._folders[rel]
            if held.users == 0:
                os.close(held.fd)
                del self._folders[rel]
                excess -= 1

    def forget_folders(self) -> None:
        """Close every folder but the root (after removals: a name may now be something else).
        Only while no other thread uses the tree."""
        with self._lock:
            for rel in [rel for rel in self._folders if rel]:
                os.close(self._folders.pop(rel).fd)

    def make_folder(self, rel: str, mode: int) -> None:
        """Create folder ``rel`` (or take the one there, never a link) and give it ``mode``."""
        parent, name = split(rel)
        with self.folder(parent) as parent_fd:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=parent_fd)
            with self.folder(rel):  # a folder, not a link: refused otherwise
                _chmod_in(parent_fd, name, mode)

    def set_mode(self, rel: str, mode: int) -> None:
        """Mode of an existing folder or file; a link found there is left as it is."""
        parent, name = split(rel)
        with self.folder(parent) as parent_fd:
            try:
                st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            except FileNotFoundError:
                return
            if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                _chmod_in(parent_fd, name, mode)

    # -- files -------------------------------------------------------------------------------
    def new_part(self, rel: str, entry: Entry) -> tuple[str, int]:
        """A new, empty ``.part`` for ``rel`` (mode 0600): its path and a descriptor to write."""
        parent, _ = split(rel)
        with self.folder(parent) as parent_fd:
            while True:
                part = part_name(rel, entry)
                with contextlib.suppress(FileExistsError):
                    return part, os.open(split(part)[1], _NEW_FILE_FLAGS, 0o600, dir_fd=parent_fd)

    def open_part(self, part: str) -> int | None:
        """A ``.part`` an earlier pull left, to resume (read and write): only a regular file of
        ours that nothing else links to; None otherwise."""
        parent, name = split(part)
        with self.folder(parent) as parent_fd:
            try:
                fd = os.open(name, _OLD_PART_FLAGS, dir_fd=parent_fd)
            except OSError:
                return None
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_nlink == 1:
            return fd
        os.close(fd)
        return None

    def new_link(self, rel: str, entry: Entry, target: str) -> str:
        """A symlink to ``target`` under a new temp name next to ``rel``; returns that name."""
        parent, _ = split(rel)
        with self.folder(parent) as parent_fd:
            while True:
                part = part_name(rel, entry)
                with contextlib.suppress(FileExistsError):
                    os.symlink(target, split(part)[1], dir_fd=parent_fd)
                    return part

    def place(self, part: str, rel: str) -> None:
        """Rename ``part`` onto ``rel`` (same folder): a file or link there is replaced, never
        followed; a folder there raises ``IsADirectoryError``."""
        parent, name = split(rel)
        with self.folder(parent) as parent_fd:
            try:
                os.rename(split(part)[1], name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            except OSError as exc:
                if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                    raise IsADirectoryError(exc.errno, "a folder is in the way", rel) from None
                raise

    def discard(self, part: str) -> None:
        parent, name = split(part)
        with self.folder(parent) as parent_fd, contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=parent_fd)

    # -- removals ----------------------------------------------------------------------------
    def remove(self, rel: str) -> None:
        """Remove ``rel``, a folder with all it holds (its links removed, never followed)."""
        parent, name = split(rel)
        with self.folder(parent) as parent_fd:
            try:
                st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            except FileNotFoundError:
                return
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(name, dir_fd=parent_fd)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=parent_fd)

    def remove_empty_folder(self, rel: str) -> bool:
        """Remove folder ``rel`` if it is empty; False when it holds something (or is no
        longer a folder)."""
        parent, name = split(rel)
        with self.folder(parent) as parent_fd:
            try:
                os.rmdir(name, dir_fd=parent_fd)
            except FileNotFoundError:
                return True
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                    return False
                raise
        return True

    def remove_temp(self, rel: str) -> None:
        """Remove a temp file of ours: a regular file this user owns, nothing else."""
        parent, name = split(rel)
        with self.folder(parent) as parent_fd:
            try:
                st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            except FileNotFoundError:
                return
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=parent_fd)


def _chmod_in(folder_fd: int, name: str, mode: int) -> None:
    """chmod ``name`` in the folder, never through a link: one found there is left as it is."""
    try:
        os.chmod(name, mode, dir_fd=folder_fd, follow_symlinks=False)
        return
    except (NotImplementedError, ValueError):  # a link there, or no such chmod on this system
        pass
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=folder_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return
        raise
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def finish_file(fd: int, mode: int, mtime: int) -> None:
    """Mode and mtime on the written file's own descriptor (after its last byte)."""
    os.fchmod(fd, mode)
    ns = clamp_mtime(mtime) * 1_000_000_000
    os.utime(fd, ns=(ns, ns))


def discard_quietly(tree: LocalTree, part: str) -> None:
    """Remove a ``.part`` of ours, if it can be (cleaning up after a failure)."""
    with contextlib.suppress(OSError, LinkInTheWay):
        tree.discard(part)


def local_error(exc: OSError, path: str) -> GputuiError:
    """An OSError on this machine as the one-line error a person can act on (naming the file
    a ``.part`` stands for, not the temp name)."""
    folder, _, name = path.rpartition("/")
    temp = PART_NAME.match(name)
    if temp is not None:
        path = f"{folder}/{temp.group('name')}" if folder else temp.group("name")
    where = f"local:{path}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpaceLeft(f"no space left on {where}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDeniedError(f"permission denied on {where}")
    return GputuiError(f"cannot write {where}: {exc.strerror or exc}")


@contextlib.contextmanager
def writing(tree: LocalTree, rel: str) -> Iterator[None]:
    """An OSError while writing ``rel`` becomes the one line that names it."""
    try:
        yield
    except OSError as exc:
        raise local_error(exc, tree.path(rel)) from None
