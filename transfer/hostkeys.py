"""Host keys as the person sees them: what a host presents, whether it is trusted, trusting it.

Trust is stored in ``$GPUTUI_HOME/known_hosts`` (OpenSSH format, so ``ssh`` could use it too);
the person's ``~/.ssh/known_hosts`` counts as trusted as well but is never written. A changed key
is never trusted over the old one here: the person removes the old line after finding out why
the key changed. A revoked key, or one certified by a revoked CA, is never trusted at all.

A host that presents a certificate from a CA nobody trusts is trusted by its plain host key,
exactly as a host without a certificate: the CA is shown, never stored, so trusting one host
does not make every host of that CA trusted.
"""

from __future__ import annotations

import asyncssh

from transfer.connect import open_link
from transfer.errors import GputuiError, HostKeyChanged, HostKeyError
from transfer.hosts import HostProfile
from transfer.known_hosts import (
    HostKeyInfo,
    KeyStatus,
    append_trusted,
    known_as,
    lookup,
    refusal,
)
from transfer.paths import known_hosts_file, locked

__all__ = [
    "HostKeyInfo",
    "KeyStatus",
    "fetch_host_key",
    "key_status",
    "refused",
    "trust_host_key",
]


async def fetch_host_key(host: HostProfile) -> HostKeyInfo:
    """The key the host presents now (logging in is not needed to see it).

    Behind a jump host that is not trusted yet, this is the jump host's key: trust goes hop by
    hop, in the order the connection needs it.
    """
    return await open_link(host).presented_host_key()


def key_status(host: HostProfile, info: HostKeyInfo) -> KeyStatus:
    """``trusted``, ``unknown`` (never seen: may be trusted), ``changed`` or ``revoked``
    (both refused)."""
    trusted = lookup(_name(host, info))
    key = _key_of(info.public_key)
    if key is not None:
        return trusted.status_of(key, _key_of(info.ca_public_key))
    return trusted.status_of_fingerprint(info.fingerprint)


def refused(host: HostProfile, info: HostKeyInfo) -> HostKeyError:
    """The error a changed or revoked key is refused with, worded as a connection words it."""
    name = _name(host, info)
    key = _key_of(info.public_key)
    if key is None:
        return HostKeyChanged(info.host, info.fingerprint, info.key_type, known_as=name)
    return refusal(lookup(name), info.host, name, key, _key_of(info.ca_public_key))


def trust_host_key(host: HostProfile, info: HostKeyInfo) -> None:
    """Append the key to gputui's known_hosts; a host that already has another key, or a revoked
    key or CA, is refused. The check and the append hold the file's lock, so trusts made at the
    same time all keep their line, and none is written twice."""
    key = _key_of(info.public_key)
    if key is None:
        raise GputuiError(f"no public key to trust for {info.host}; fetch the host key first")
    if key.get_fingerprint("sha256") != info.fingerprint:
        raise GputuiError(f"the key for {info.host} does not match the fingerprint shown")
    ca = _key_of(info.ca_public_key)
    name = _name(host, info)
    path = known_hosts_file()
    with locked(path):
        trusted = lookup(name)
        status = trusted.status_of(key, ca)
        if status == "trusted":
            return
        if status != "unknown":
            raise refusal(trusted, info.host, name, key, ca)
        append_trusted(name, info.public_key, path)


def _name(host: HostProfile, info: HostKeyInfo) -> str:
    return info.known_as or known_as(host.hostname, host.port)


def _key_of(public_key: str) -> asyncssh.SSHKey | None:
    if not public_key:
        return None
    try:
        return asyncssh.import_public_key(public_key)
    except (asyncssh.KeyImportError, ValueError):
        return None
