"""The one place that picks a link for a host: SSH, or this machine for ``local``."""

from __future__ import annotations

from transfer.hosts import HostProfile
from transfer.link import Link
from transfer.local_link import LocalLink
from transfer.ssh_link import SSHLink


def open_link(host: HostProfile) -> Link:
    """A link that is not connected yet: use it as ``async with open_link(host) as link:``."""
    if host.is_local:
        return LocalLink(host)
    return SSHLink(host)
