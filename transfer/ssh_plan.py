"""Where and how to log in to a host: its profile (or one hop of a jump chain) with the person's
ssh config applied and the keys to offer loaded, as asyncssh will for the real connection."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.encryption import get_default_encryption_algs

from transfer.errors import AuthenticationFailed, ConfigError, GputuiError
from transfer.hosts import HostProfile, HostStore
from transfer.known_hosts import known_as
from transfer.sshconfig import default_ssh_dir

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
class LoginPlan:
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


async def plan_login(target: Target) -> LoginPlan:
    """Apply the ssh config and load the keys, as asyncssh will for the real connection."""
    config = ssh_config_paths()
    kwargs: dict[str, Any] = {
        "config": config,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "login_timeout": LOGIN_TIMEOUT_S,
        "keepalive_interval": KEEPALIVE_INTERVAL_S,
        "keepalive_count_max": KEEPALIVE_COUNT_MAX,
        "encryption_algs": encryption_algs(),
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
        raise AuthenticationFailed(key_problem(target, keys_tried, exc)) from None
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
    return LoginPlan(
        target=target,
        kwargs=kwargs,
        hostname=options.host,
        port=int(options.port),
        username=options.username,
        known_as=known_as(name, int(options.port)),
        jump=jump,
        keys_tried=keys_tried,
    )


def hop_target(spec: str, *, first: bool) -> Target:
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


def encryption_algs() -> list[str]:
    algs = [a.decode() for a in get_default_encryption_algs()]
    return list(dict.fromkeys([PREFERRED_CIPHER, *algs]))


def key_problem(target: Target, keys: list[str], exc: BaseException) -> str:
    text = str(exc)
    where = keys[0] if keys else "the key file"
    if "assphrase" in text:
        return (
            f"{target.label}: {where} is protected by a passphrase; "
            f"load it into ssh-agent (ssh-add {where})"
        )
    return f"{target.label}: cannot use {where}: {text}"
