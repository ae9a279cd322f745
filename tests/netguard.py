"""Keep the test run on this machine: connections go to loopback (or a Unix socket) only.

The app under test knows hosts with documentation addresses (203.0.113.x) and made-up names;
a widget that tried to reach one would send traffic off the machine, or hang in the resolver.
With this guard such an attempt fails at once, like a host with no route to it.

A test that builds its own network on this machine (the end-to-end test's network namespaces)
allows its private addresses by prefix with :func:`allow`, and takes them back with
:func:`disallow` when it tears the network down.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Any

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
_allowed: list[str] = []


def allow(prefix: str) -> None:
    """Let connections reach addresses that start with ``prefix`` (e.g. ``"10.231.7."``)."""
    if not prefix or not prefix[0].isdigit():
        raise ValueError(f"allow a numeric address prefix, not {prefix!r}")
    _allowed.append(prefix)


def disallow(prefix: str) -> None:
    """Take back one :func:`allow` of ``prefix``."""
    _allowed.remove(prefix)


def _may_reach(host: Any) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or any(str(address).startswith(p) for p in _allowed)


def _refuse(address: Any) -> OSError:
    return OSError(
        errno.ENETUNREACH, f"tests reach loopback and their own test networks only, not {address!r}"
    )


def _connect(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _may_reach(address[0]):
        raise _refuse(address)
    _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _may_reach(address[0]):
        return errno.ENETUNREACH
    return _real_connect_ex(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _may_reach(host):
        try:
            ipaddress.ip_address(str(host))
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no names ({host!r})") from None
    return _real_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo
