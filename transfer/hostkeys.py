"""Host keys as the person sees them: what a host presents, whether it is trusted, trusting it.

Trust is stored in ``$GPUTUI_HOME/known_hosts`` (OpenSSH format, so ``ssh`` could use it too);
the person's ``~/.ssh/known_hosts`` counts as trusted as well but is never written. A changed key
is never trusted over the old one here: the person removes the old line after finding out why
the key changed.
"""

from __future__ import annotations

import asyncssh

from transfer.errors import ConfigError, GputuiError, HostKeyChanged
from transfer.hosts import HostProfile
from transfer.known_hosts import (
    HostKeyInfo,
    KeyStatus,
    append_trusted,
    known_as,
    lookup,
)
from transfer.ssh_connection import fetch_presented_key

__all__ = ["HostKeyInfo", "KeyStatus", "fetch_host_key", "key_status", "trust_host_key"]


async def fetch_host_key(host: HostProfile) -> HostKeyInfo:
    """The key the host presents now (logging in is not needed to see it).

    Behind a jump host that is not trusted yet, this is the jump host's key: trust goes hop by
    hop, in the order the connection needs it.
    """
    if host.is_local:
        raise ConfigError(f"{host.name} is this machine: it has no SSH host key")
    return await fetch_presented_key(host)


def key_status(host: HostProfile, info: HostKeyInfo) -> KeyStatus:
    """``trusted``, ``unknown`` (never seen: may be trusted) or ``changed`` (refused)."""
    trusted = lookup(_name(host, info))
    key = _key_of(info)
    if key is not None:
        return trusted.status_of(key)
    return trusted.status_of_fingerprint(info.fingerprint)


def trust_host_key(host: HostProfile, info: HostKeyInfo) -> None:
    """Append the key to gputui's known_hosts; a host that already has another key is refused."""
    key = _key_of(info)
    if key is None:
        raise GputuiError(f"no public key to trust for {info.host}; fetch the host key first")
    if key.get_fingerprint("sha256") != info.fingerprint:
        raise GputuiError(f"the key for {info.host} does not match the fingerprint shown")
    name = _name(host, info)
    status = lookup(name).status_of(key)
    if status == "trusted":
        return
    if status == "changed":
        raise HostKeyChanged(
            info.host,
            info.fingerprint,
            info.key_type,
            public_key=info.public_key,
            known_as=name,
        )
    append_trusted(name, info.public_key)


def _name(host: HostProfile, info: HostKeyInfo) -> str:
    return info.known_as or known_as(host.hostname, host.port)


def _key_of(info: HostKeyInfo) -> asyncssh.SSHKey | None:
    if not info.public_key:
        return None
    try:
        return asyncssh.import_public_key(info.public_key)
    except (asyncssh.KeyImportError, ValueError):
        return None
