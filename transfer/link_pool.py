"""One link per host, shared by everything that talks to it (jobs, telemetry, transfers).

A rented host limits its SSH sessions and every connection costs a handshake; the app keeps one
link per host and hands it out counted. ``acquire`` gives the host's link (made, not yet
connected, on first use: the user connects it, and a link connects only once); ``release`` drops
one use and closes the link when nobody uses it any more. A host whose profile changed gets a
new link; the old one closes once its last user lets go.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from transfer.connect import open_link
from transfer.hosts import HostProfile
from transfer.link import Link


class LinkPool:
    """The links of the hosts in use, each with the number of its users."""

    def __init__(self, opener: Callable[[HostProfile], Link] = open_link) -> None:
        self._opener = opener
        self._current: dict[str, Link] = {}  # host name -> the link new users get
        self._users: dict[int, tuple[Link, int]] = {}  # id(link) -> (link, users)

    def acquire(self, host: HostProfile) -> Link:
        """The link of ``host`` (a new one when its profile changed), counted as one more use."""
        link = self._current.get(host.name)
        if link is None or link.host != host:
            link = self._current[host.name] = self._opener(host)
        _, users = self._users.get(id(link), (link, 0))
        self._users[id(link)] = (link, users + 1)
        return link

    async def release(self, link: Link) -> None:
        """One use of ``link`` ended: close it when that was its last user."""
        _, users = self._users.get(id(link), (link, 1))
        if users > 1:
            self._users[id(link)] = (link, users - 1)
            return
        self._users.pop(id(link), None)
        if self._current.get(link.host.name) is link:
            del self._current[link.host.name]
        await _close(link)

    def users(self, name: str) -> int:
        """How many users the current link of host ``name`` has (0 when it has none)."""
        link = self._current.get(name)
        return 0 if link is None else self._users.get(id(link), (link, 0))[1]

    async def close(self) -> None:
        """Close every link (the app is exiting)."""
        links = [link for link, _ in self._users.values()]
        self._users, self._current = {}, {}
        for link in links:
            await _close(link)


async def _close(link: Link) -> None:
    with contextlib.suppress(Exception):
        await link.close()
