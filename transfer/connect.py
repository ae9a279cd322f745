"""The one place that picks a link for a host: the registration table of link kinds.

A host profile names its ``transport``; :data:`LINK_KINDS` maps each transport to the class of
its link as ``module:Class``. Adding a kind of link is its module, one line here, and its name
in ``HostProfile.transport``. A kind's module is imported only when a host needs it (asyncssh
costs ~140 ms, and the app's first frame never needs it).
"""

from __future__ import annotations

import importlib

from transfer.hosts import HostProfile
from transfer.link import Link

LINK_KINDS: dict[str, str] = {
    "ssh": "transfer.ssh_link:SSHLink",
    "local": "transfer.local_link:LocalLink",
}


def link_class(host: HostProfile) -> type[Link]:
    """The kind of link that reaches ``host``."""
    try:
        module, _, name = LINK_KINDS[host.transport].partition(":")
    except KeyError:
        raise LookupError(f"no kind of link for transport {host.transport!r}") from None
    found: type[Link] = getattr(importlib.import_module(module), name)
    return found


def open_link(host: HostProfile) -> Link:
    """A link that is not connected yet: use it as ``async with open_link(host) as link:``."""
    return link_class(host)(host)
