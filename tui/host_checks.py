"""The app's door to the host checks in transfer/: probe, fetch and trust host keys.

transfer/ is imported inside each call: asyncssh costs a few hundred milliseconds to import and
the host list should be on screen before that. Tests replace these functions with fakes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transfer.errors import GputuiError, HostKeyChanged, HostKeyUnknown
from transfer.hosts import HostProfile
from tui.host_status import HostStatus

if TYPE_CHECKING:
    from transfer.hostkeys import HostKeyInfo
    from transfer.probe import ProbeReport


async def probe_host(host: HostProfile) -> ProbeReport:
    from transfer.probe import probe

    return await probe(host)


async def fetch_key(host: HostProfile) -> HostKeyInfo:
    from transfer.hostkeys import fetch_host_key

    return await fetch_host_key(host)


def trust_key(host: HostProfile, info: HostKeyInfo) -> None:
    """Blocking file write: call it from a thread worker."""
    from transfer.hostkeys import trust_host_key

    trust_host_key(host, info)


def status_from_error(error: BaseException) -> HostStatus:
    """The status a failed test leaves: key problems get their own states."""
    if isinstance(error, HostKeyUnknown):
        return HostStatus(state="key-unknown", message=str(error))
    if isinstance(error, HostKeyChanged):
        return HostStatus(state="key-changed", message=str(error))
    if isinstance(error, GputuiError):
        return HostStatus(state="failed", message=str(error))
    return HostStatus(state="failed", message=f"{type(error).__name__}: {error}")
