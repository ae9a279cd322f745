"""Opening an asyncssh connection the way ``ssh`` would, with gputui's host-key rules.

The person's ssh config is honoured (asyncssh reads it; the profile's explicit fields win), and so
are the agent and key files. Host keys are checked here rather than by asyncssh, because asyncssh
reports an unknown key and a changed key with the same error, and the person must be told which:
an unknown key can be trusted after checking its fingerprint, a changed one is refused. asyncssh
applies the trusted keys, CAs and ``@revoked`` entries; when it refuses, the key (and the CA of a
certificate) is read again to say why, by the rules in :mod:`transfer.known_hosts`.

Jump hosts (``ProxyJump`` from the profile or the ssh config) are opened here too, hop by hop,
so that every hop's key goes through the same check (asyncssh does not apply a custom client or
known_hosts to the hops it opens itself).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncssh
from asyncssh.public_key import get_default_certificate_algs, get_default_public_key_algs

from transfer.errors import (
    AuthenticationFailed,
    ConfigError,
    GputuiError,
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
)
from transfer.hosts import HostProfile
from transfer.known_hosts import HostKeyInfo, TrustedKeys, key_info, lookup, refusal
from transfer.ssh_plan import (
    CONNECT_TIMEOUT_S,
    MAX_HOPS,
    LoginPlan,
    Target,
    hop_target,
    key_problem,
    plan_login,
)

log = logging.getLogger("gputui.transfer")

LostCallback = Callable[[asyncssh.SSHClientConnection], None]


@dataclass
class ConnectedHost:
    """The connection to the target, and the jump connections it runs through."""

    conn: asyncssh.SSHClientConnection
    hops: list[asyncssh.SSHClientConnection] = field(default_factory=list)

    async def close(self) -> None:
        await _close_all([self.conn, *reversed(self.hops)])


class _Watch:
    """What the guarded client saw: the key presented (or the CA of the certificate presented),
    and when the connection went."""

    def __init__(self, on_lost: LostCallback | None) -> None:
        self.presented: asyncssh.SSHKey | None = None
        self.ca_key: asyncssh.SSHKey | None = None
        self.conn: asyncssh.SSHClientConnection | None = None
        self.on_lost = on_lost


class _GuardedClient(asyncssh.SSHClient):
    """Accepts only keys already trusted (passed to asyncssh); records any other key."""

    def __init__(self, watch: _Watch) -> None:
        self._watch = watch

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self._watch.conn = conn

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch.on_lost is not None and self._watch.conn is not None:
            self._watch.on_lost(self._watch.conn)

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self._watch.presented = key
        return False

    def validate_host_ca_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self._watch.ca_key = key
        return False


async def connect_host(host: HostProfile, *, on_lost: LostCallback | None = None) -> ConnectedHost:
    """Log in to ``host`` (through its jump hosts); every failure is one GputuiError."""
    hops: list[asyncssh.SSHClientConnection] = []
    try:
        conn = await _connect(Target.of(host), hops, on_lost=on_lost, depth=0)
    except BaseException:
        await _close_all(list(reversed(hops)))
        raise
    return ConnectedHost(conn=conn, hops=hops)


async def fetch_presented_key(host: HostProfile) -> HostKeyInfo:
    """The key the host presents now; for an untrusted jump host, that hop's key instead."""
    target = Target.of(host)
    hops: list[asyncssh.SSHClientConnection] = []
    try:
        plan = await plan_login(target)
        try:
            tunnel = await _open_jumps(plan, hops, depth=0)
        except (HostKeyUnknown, HostKeyChanged) as exc:
            return HostKeyInfo.from_error(exc)
        trusted = await asyncio.to_thread(lookup, plan.known_as)
        key, ca = await _presented_keys(plan, tunnel, trusted)
        return key_info(plan.target.label, plan.known_as, key, ca)
    finally:
        await _close_all(list(reversed(hops)))


async def _connect(
    target: Target,
    hops: list[asyncssh.SSHClientConnection],
    *,
    on_lost: LostCallback | None,
    depth: int,
    via: asyncssh.SSHClientConnection | None = None,
) -> asyncssh.SSHClientConnection:
    plan = await plan_login(target)
    tunnel = via if via is not None else await _open_jumps(plan, hops, depth)
    trusted = await asyncio.to_thread(lookup, plan.known_as)
    watch = _Watch(on_lost)
    try:
        # The name as the profile gives it, so the ssh config applies exactly as in _plan.
        return await asyncssh.connect(
            target.hostname,
            target.port or (),
            tunnel=tunnel,
            known_hosts=(trusted.accepted(), trusted.accepted_cas(), trusted.revoked),
            server_host_key_algs=_host_key_algs(trusted),
            client_factory=lambda: _GuardedClient(watch),
            **plan.kwargs,
        )
    except asyncssh.HostKeyNotVerifiable:
        key, ca = await _presented_keys(plan, tunnel, trusted, watch)
        raise refusal(trusted, plan.target.label, plan.known_as, key, ca) from None
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise _as_gputui_error(exc, plan) from None


async def _presented_keys(
    plan: LoginPlan,
    tunnel: asyncssh.SSHClientConnection | None,
    trusted: TrustedKeys,
    seen: _Watch | None = None,
) -> tuple[asyncssh.SSHKey, asyncssh.SSHKey | None]:
    """The key the host presents and the CA that certified it (None for a plain key).

    A key refused before our checks saw it (revoked) is fetched again. A certificate's own key
    is read with a handshake offering plain keys only: the key OpenSSH falls back to when the
    CA is not trusted, and the one that trusting stores.
    """
    if seen is None or (seen.presented is None and seen.ca_key is None):
        seen = await _key_exchange(plan, tunnel, _host_key_algs(trusted))
    if seen.presented is not None:
        return seen.presented, None
    plain = await _key_exchange(plan, tunnel, _host_key_algs(trusted, certificates=False))
    if seen.ca_key is None or plain.presented is None:
        raise HostUnreachable(f"{plan.target.label} ({plan.address}) presented no usable host key")
    return plain.presented, seen.ca_key


async def _key_exchange(
    plan: LoginPlan, tunnel: asyncssh.SSHClientConnection | None, algs: list[str]
) -> _Watch:
    """One handshake that only records what the host presents: every key is refused."""
    watch = _Watch(None)
    kwargs = {**plan.kwargs, "known_hosts": ([], [], []), "server_host_key_algs": algs}
    try:
        conn = await asyncssh.connect(
            plan.target.hostname,
            plan.target.port or (),
            tunnel=tunnel,
            client_factory=lambda: _GuardedClient(watch),
            **kwargs,
        )
    except asyncssh.HostKeyNotVerifiable:
        return watch
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise _as_gputui_error(exc, plan) from None
    conn.close()  # not reached: the client above trusts nothing
    return watch


async def _open_jumps(
    plan: LoginPlan, hops: list[asyncssh.SSHClientConnection], depth: int
) -> asyncssh.SSHClientConnection | None:
    """Open the jump chain ``a,b,…`` in order, each hop through the previous one."""
    if plan.jump is None:
        return None
    if depth >= MAX_HOPS:
        raise ConfigError(f"{plan.target.label}: ProxyJump chain is longer than {MAX_HOPS} hops")
    via: asyncssh.SSHClientConnection | None = None
    for index, spec in enumerate(s.strip() for s in plan.jump.split(",")):
        hop = await asyncio.to_thread(hop_target, spec, first=index == 0)
        try:
            conn = await _connect(hop, hops, on_lost=None, depth=depth + 1, via=via)
        except HostUnreachable as exc:
            raise HostUnreachable(f"{plan.target.label}: jump host {exc}") from None
        hops.append(conn)
        via = conn
    return via


def _host_key_algs(trusted: TrustedKeys, *, certificates: bool = True) -> list[str]:
    """Ask first for the kinds of key already trusted, so a host with several keys shows the
    one we know; then every other kind, so that a key of a new kind is seen (and refused as a
    change) rather than ending in a bare negotiation failure."""
    algs: list[str] = []
    for key in trusted.host_keys:
        algs += [a.decode() for a in key.sig_algorithms]
    if certificates:
        algs += [a.decode() for a in get_default_certificate_algs()]
    algs += [a.decode() for a in get_default_public_key_algs()]
    return list(dict.fromkeys(algs))


def _as_gputui_error(exc: BaseException, plan: LoginPlan) -> GputuiError:
    label, address = plan.target.label, plan.address
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthenticationFailed(
            f"{label} ({address}) refused every key offered: {', '.join(plan.keys_tried)}; "
            "set the host's key file or load the key into ssh-agent"
        )
    if isinstance(exc, asyncssh.KeyImportError):
        return AuthenticationFailed(key_problem(plan.target, plan.keys_tried, exc))
    return HostUnreachable(f"cannot reach {label} ({address}): {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is sshd running on that port?)"
    if isinstance(exc, socket.gaierror):
        return "unknown host name"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"no answer within {CONNECT_TIMEOUT_S:.0f} s"
    if isinstance(exc, asyncssh.ChannelOpenError):
        return f"the jump host could not connect: {exc.reason}"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"the server closed the connection: {exc.reason or type(exc).__name__}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__


async def _close_all(conns: list[asyncssh.SSHClientConnection]) -> None:
    for conn in conns:
        conn.close()
    for conn in conns:
        try:
            await asyncio.wait_for(conn.wait_closed(), timeout=5)
        except (TimeoutError, OSError, asyncssh.Error):
            conn.abort()
