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
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.encryption import get_default_encryption_algs
from asyncssh.public_key import get_default_certificate_algs, get_default_public_key_algs

from transfer.errors import (
    AuthenticationFailed,
    ConfigError,
    GputuiError,
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
)
from transfer.hosts import HostProfile, HostStore
from transfer.known_hosts import HostKeyInfo, TrustedKeys, key_info, known_as, lookup, refusal
from transfer.sshconfig import default_ssh_dir

log = logging.getLogger("gputui.transfer")

CONNECT_TIMEOUT_S = 20.0
LOGIN_TIMEOUT_S = 30.0
KEEPALIVE_INTERVAL_S = 15.0
KEEPALIVE_COUNT_MAX = 3
# Bulk pulls need bandwidth x RTT in flight; asyncssh's 2 MiB default caps a 100 ms link at 20 MB/s.
WINDOW_BYTES = 16 * 1024 * 1024
# AES-GCM uses the CPU's AES instructions: several times faster than ChaCha20 in asyncssh.
PREFERRED_CIPHER = "aes128-gcm@openssh.com"
DEFAULT_KEY_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa", "id_ed25519_sk", "id_ecdsa_sk")
MAX_HOPS = 8

LostCallback = Callable[[asyncssh.SSHClientConnection], None]


@dataclass(frozen=True)
class Target:
    """One machine to log in to: a profile, or one hop of a jump chain."""

    label: str
    hostname: str
    port: int | None = None  # None: the ssh config decides, else 22
    user: str | None = None
    identity_file: str | None = None
    proxy_jump: str | None = None  # None: the ssh config decides; "none": direct

    @classmethod
    def of(cls, host: HostProfile) -> Target:
        return cls(
            label=host.name,
            hostname=host.hostname,
            port=host.port if host.port != 22 else None,
            user=host.user,
            identity_file=host.identity_file,
            proxy_jump=host.proxy_jump,
        )


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


@dataclass
class _Plan:
    """A target with its ssh config applied: where to go, as whom, with which keys."""

    target: Target
    kwargs: dict[str, Any]
    hostname: str
    port: int
    username: str
    known_as: str
    jump: str | None
    keys_tried: list[str]

    @property
    def address(self) -> str:
        port = f":{self.port}" if self.port != 22 else ""
        return f"{self.username}@{self.hostname}{port}"


def ssh_config_paths() -> list[str]:
    """The ssh config gputui reads: ``~/.ssh/config`` (or ``$GPUTUI_SSH_DIR/config``)."""
    path = default_ssh_dir() / "config"
    return [str(path)] if path.is_file() else []


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
        plan = await _plan(target)
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
    plan = await _plan(target)
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
    except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
        raise _as_gputui_error(exc, plan) from None


async def _presented_keys(
    plan: _Plan,
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
    plan: _Plan, tunnel: asyncssh.SSHClientConnection | None, algs: list[str]
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
    except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
        raise _as_gputui_error(exc, plan) from None
    conn.close()  # not reached: the client above trusts nothing
    return watch


async def _plan(target: Target) -> _Plan:
    """Apply the ssh config and load the keys, as asyncssh will for the real connection."""
    config = ssh_config_paths()
    kwargs: dict[str, Any] = {
        "config": config,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "login_timeout": LOGIN_TIMEOUT_S,
        "keepalive_interval": KEEPALIVE_INTERVAL_S,
        "keepalive_count_max": KEEPALIVE_COUNT_MAX,
        "encryption_algs": _encryption_algs(),
        "window": WINDOW_BYTES,
    }
    if target.user:
        kwargs["username"] = target.user
    keys_tried: list[str] = []
    agent = bool(os.environ.get("SSH_AUTH_SOCK"))
    if target.identity_file:
        path = Path(target.identity_file).expanduser()
        if not path.is_file():
            raise AuthenticationFailed(
                f"{target.label}: identity file {path} does not exist; fix the host's key file"
            )
        kwargs["client_keys"] = [str(path)]
        kwargs["ignore_encrypted"] = agent  # the agent may hold it unlocked
        keys_tried.append(str(path))
    elif os.environ.get("GPUTUI_SSH_DIR"):
        found = [default_ssh_dir() / n for n in DEFAULT_KEY_NAMES]
        found = [p for p in found if p.is_file()]
        if found:
            kwargs["client_keys"] = [str(p) for p in found]
            kwargs["ignore_encrypted"] = True
            keys_tried += [str(p) for p in found]
    try:
        options = await asyncssh.SSHClientConnectionOptions.construct(
            host=target.hostname, port=target.port or (), **kwargs
        )
    except asyncssh.KeyImportError as exc:
        raise AuthenticationFailed(_key_problem(target, keys_tried, exc)) from None
    except OSError as exc:
        raise AuthenticationFailed(
            f"{target.label}: cannot read key file {exc.filename or ''}: {exc.strerror}"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"ssh settings for {target.label}: {exc}") from None
    if not keys_tried:
        configured = options.config.get("IdentityFile", ())
        if configured:
            keys_tried += [str(p) for p in configured]
        else:
            keys_tried += [str(Path("~/.ssh") / n) for n in DEFAULT_KEY_NAMES[:3]]
    if options.agent_path:
        keys_tried.append("the ssh-agent's keys")
    jump = target.proxy_jump if target.proxy_jump is not None else options.tunnel
    if not isinstance(jump, str) or jump.strip().lower() in ("", "none"):
        jump = None
    kwargs["username"] = options.username
    name = options.host_key_alias or options.host
    return _Plan(
        target=target,
        kwargs=kwargs,
        hostname=options.host,
        port=int(options.port),
        username=options.username,
        known_as=known_as(name, int(options.port)),
        jump=jump,
        keys_tried=keys_tried,
    )


async def _open_jumps(
    plan: _Plan, hops: list[asyncssh.SSHClientConnection], depth: int
) -> asyncssh.SSHClientConnection | None:
    """Open the jump chain ``a,b,…`` in order, each hop through the previous one."""
    if plan.jump is None:
        return None
    if depth >= MAX_HOPS:
        raise ConfigError(f"{plan.target.label}: ProxyJump chain is longer than {MAX_HOPS} hops")
    via: asyncssh.SSHClientConnection | None = None
    for index, spec in enumerate(s.strip() for s in plan.jump.split(",")):
        hop = await asyncio.to_thread(_hop_target, spec, first=index == 0)
        try:
            conn = await _connect(hop, hops, on_lost=None, depth=depth + 1, via=via)
        except HostUnreachable as exc:
            raise HostUnreachable(f"{plan.target.label}: jump host {exc}") from None
        hops.append(conn)
        via = conn
    return via


def _hop_target(spec: str, *, first: bool) -> Target:
    """A jump host: a gputui profile name, or ``[user@]host[:port]`` (ssh config applies)."""
    if spec.startswith("ssh://"):
        spec = spec[len("ssh://") :]
    if "@" not in spec and ":" not in spec:
        try:
            for profile in HostStore().load():
                if profile.name == spec and not profile.is_local:
                    return Target.of(profile)
        except GputuiError:
            pass
    user, _, hostport = spec.rpartition("@")
    hostname, port = hostport, None
    if hostport.startswith("["):
        inner, _, rest = hostport[1:].partition("]")
        hostname = inner
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif hostport.count(":") == 1:
        name, _, number = hostport.partition(":")
        if number.isdigit():
            hostname, port = name, int(number)
    # Only the first hop may have its own ProxyJump from the ssh config; later ones go via it.
    return Target(
        label=spec,
        hostname=hostname,
        port=port,
        user=user or None,
        proxy_jump=None if first else "none",
    )


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


def _encryption_algs() -> list[str]:
    algs = [a.decode() for a in get_default_encryption_algs()]
    return list(dict.fromkeys([PREFERRED_CIPHER, *algs]))


def _as_gputui_error(exc: BaseException, plan: _Plan) -> GputuiError:
    label, address = plan.target.label, plan.address
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthenticationFailed(
            f"{label} ({address}) refused every key offered: {', '.join(plan.keys_tried)}; "
            "set the host's key file or load the key into ssh-agent"
        )
    if isinstance(exc, asyncssh.KeyImportError):
        return AuthenticationFailed(_key_problem(plan.target, plan.keys_tried, exc))
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


def _key_problem(target: Target, keys: list[str], exc: BaseException) -> str:
    text = str(exc)
    where = keys[0] if keys else "the key file"
    if "assphrase" in text:
        return (
            f"{target.label}: {where} is protected by a passphrase; "
            f"load it into ssh-agent (ssh-add {where})"
        )
    return f"{target.label}: cannot use {where}: {text}"


async def _close_all(conns: list[asyncssh.SSHClientConnection]) -> None:
    for conn in conns:
        conn.close()
    for conn in conns:
        try:
            await asyncio.wait_for(conn.wait_closed(), timeout=5)
        except (asyncio.TimeoutError, OSError, asyncssh.Error):
            conn.abort()
