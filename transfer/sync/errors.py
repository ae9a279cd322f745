"""The ways a push or pull fails, each one line that says where and what to do."""

from __future__ import annotations

from transfer.errors import GputuiError, LinkLost, RemoteFileError


class NoSpaceLeft(RemoteFileError):
    """The destination filesystem is full; what was written stays as ``.part`` for a resume."""


class PermissionDeniedError(RemoteFileError):
    """The destination (or source) refuses us."""


class TransferInterrupted(LinkLost):
    """The connection dropped and retries ran out; the same command resumes."""


class UnsafeHostData(GputuiError):
    """A host sent a path or a tar member that could reach outside the destination or change
    its meaning (``..``, an absolute path, another type than listed): the sync is refused."""


class LinkInTheWay(GputuiError):
    """A link (or a file) sits where a pull needs a folder on this machine: never followed."""


class SyncUsageError(GputuiError):
    """Source or destination that cannot be synced as asked (missing source, file onto folder)."""

    exit_code = 2


def failure_from_stderr(stderr: bytes | str, where: str, what: str) -> GputuiError:
    """Turn a failed host command's stderr into the matching one-line error.

    ``where`` is ``HOST:PATH`` of the destination (or source) the command worked on.
    """
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lowered = text.lower()
    if "no space left" in lowered or "disk quota exceeded" in lowered:
        return NoSpaceLeft(f"no space left on {where}")
    if "permission denied" in lowered or "operation not permitted" in lowered:
        return PermissionDeniedError(f"permission denied on {where}")
    if "read-only file system" in lowered:
        return PermissionDeniedError(f"read-only file system at {where}")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "no message"
    return RemoteFileError(f"{what} failed on {where}: {last}")
