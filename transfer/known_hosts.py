"""Which host keys are trusted: gputui's own known_hosts plus the person's ``~/.ssh/known_hosts``.

Matching follows OpenSSH: an entry names ``host`` for port 22 and ``[host]:port`` otherwise, with
``*``/``?`` wildcards, ``!`` negations, hashed names (``|1|salt|hash``) and the ``@revoked`` and
``@cert-authority`` markers. Unlike asyncssh's own matcher, a ``[host]:port`` lookup never falls
back to entries for port 22: two machines behind one address on different ports (common with GPU
rental) are different hosts. The person's file is only read; new trust goes to gputui's file.

The verdict on a presented key follows OpenSSH too: a key, or the CA that certified it, marked
``@revoked`` is refused whatever else trusts it; a certificate from a CA that no
``@cert-authority`` line trusts is judged by its plain key, so a host never seen is "unknown",
never "changed", and trusting it stores that plain key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import asyncssh

from transfer.errors import HostKeyChanged, HostKeyError, HostKeyRevoked, HostKeyUnknown
from transfer.paths import ensure_folder, known_hosts_file
from transfer.sshconfig import default_ssh_dir

KeyStatus = Literal["trusted", "unknown", "changed", "revoked"]


@dataclass(frozen=True)
class HostKeyInfo:
    """A host key as a person checks it: type and SHA256 fingerprint.

    ``public_key`` (``"ssh-ed25519 AAAA…"``) and ``known_as`` (``host`` or ``[host]:port``) let
    :func:`transfer.hostkeys.trust_host_key` store exactly the key that was shown. A key that
    came in a host certificate also names the CA that signed it (``ca_public_key`` and its
    type and fingerprint); the key itself is the plain key inside the certificate.
    """

    host: str
    key_type: str
    fingerprint: str
    public_key: str = ""
    known_as: str = ""
    ca_key_type: str = ""
    ca_fingerprint: str = ""
    ca_public_key: str = ""

    @classmethod
    def from_error(cls, error: HostKeyError) -> HostKeyInfo:
        """The key a refused connection saw, e.g. to offer trusting it in a dialog."""
        return cls(
            host=error.host,
            key_type=error.key_type,
            fingerprint=error.fingerprint,
            public_key=error.public_key,
            known_as=error.known_as,
            ca_key_type=error.ca_key_type,
            ca_fingerprint=error.ca_fingerprint,
            ca_public_key=error.ca_public_key,
        )


@dataclass
class TrustedKeys:
    """Everything the known_hosts files say about one host name."""

    host_keys: list[asyncssh.SSHKey] = field(default_factory=list)
    ca_keys: list[asyncssh.SSHKey] = field(default_factory=list)
    revoked: list[asyncssh.SSHKey] = field(default_factory=list)

    def accepted(self) -> list[asyncssh.SSHKey]:
        """Host keys that count: a key listed both as trusted and as revoked is revoked."""
        return [k for k in self.host_keys if not self.is_revoked(k)]

    def accepted_cas(self) -> list[asyncssh.SSHKey]:
        """CA keys that count, revoked ones left out."""
        return [k for k in self.ca_keys if not self.is_revoked(k)]

    def is_revoked(self, key: asyncssh.SSHKey) -> bool:
        return any(k.public_data == key.public_data for k in self.revoked)

    def status_of(self, key: asyncssh.SSHKey, ca: asyncssh.SSHKey | None = None) -> KeyStatus:
        """The verdict on ``key``, certified by ``ca`` when it came in a host certificate.

        A trusted CA makes the key trusted here; the certificate's own checks (principal,
        validity dates) are asyncssh's part when connecting.
        """
        if self.is_revoked(key) or (ca is not None and self.is_revoked(ca)):
            return "revoked"
        data = key.public_data
        if any(k.public_data == data for k in self.host_keys):
            return "trusted"
        if ca is not None and any(k.public_data == ca.public_data for k in self.ca_keys):
            return "trusted"
        return "changed" if self.host_keys else "unknown"

    def status_of_fingerprint(self, fingerprint: str) -> KeyStatus:
        if any(k.get_fingerprint("sha256") == fingerprint for k in self.revoked):
            return "revoked"
        if any(k.get_fingerprint("sha256") == fingerprint for k in self.host_keys):
            return "trusted"
        return "changed" if self.host_keys else "unknown"


def known_as(hostname: str, port: int) -> str:
    """The name OpenSSH files a host under."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


def known_hosts_files() -> list[Path]:
    """gputui's file first (the one we write), then the person's own (read only)."""
    return [known_hosts_file(), default_ssh_dir() / "known_hosts"]


def lookup(name: str, files: list[Path] | None = None) -> TrustedKeys:
    """The keys trusted (and revoked) for ``name`` (``host`` or ``[host]:port``)."""
    trusted = TrustedKeys()
    for path in files if files is not None else known_hosts_files():
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            entry = _parse_line(line)
            if entry is None:
                continue
            marker, patterns, key_text = entry
            if not _matches(name, patterns):
                continue
            try:
                key = asyncssh.import_public_key(key_text)
            except (asyncssh.KeyImportError, ValueError):
                continue  # OpenSSH skips lines it cannot read, and so do we
            if marker == "@revoked":
                trusted.revoked.append(key)
            elif marker == "@cert-authority":
                trusted.ca_keys.append(key)
            elif marker is None:
                trusted.host_keys.append(key)
    return trusted


def key_info(
    host: str, name: str, key: asyncssh.SSHKey, ca: asyncssh.SSHKey | None = None
) -> HostKeyInfo:
    return HostKeyInfo(
        host=host,
        key_type=key.get_algorithm(),
        fingerprint=key.get_fingerprint("sha256"),
        public_key=openssh_public_key(key),
        known_as=name,
        ca_key_type=ca.get_algorithm() if ca is not None else "",
        ca_fingerprint=ca.get_fingerprint("sha256") if ca is not None else "",
        ca_public_key=openssh_public_key(ca) if ca is not None else "",
    )


def refusal(
    trusted: TrustedKeys, host: str, name: str, key: asyncssh.SSHKey, ca: asyncssh.SSHKey | None
) -> HostKeyError:
    """The error for a key that a connection refused: revoked, unknown or changed.

    "trusted" is never why a key was refused, unless a trusted CA's certificate failed its own
    checks (wrong name, expired) or the host answered differently the second time: both are
    refused as a change.
    """
    info = key_info(host, name, key, ca)
    fields = {
        "public_key": info.public_key,
        "known_as": info.known_as,
        "ca_key_type": info.ca_key_type,
        "ca_fingerprint": info.ca_fingerprint,
        "ca_public_key": info.ca_public_key,
    }
    status = trusted.status_of(key, ca)
    if status == "revoked":
        ca_revoked = not trusted.is_revoked(key)
        return HostKeyRevoked(
            info.host, info.fingerprint, info.key_type, ca_revoked=ca_revoked, **fields
        )
    if status == "unknown":
        return HostKeyUnknown(info.host, info.fingerprint, info.key_type, **fields)
    return HostKeyChanged(info.host, info.fingerprint, info.key_type, **fields)


def openssh_public_key(key: asyncssh.SSHKey) -> str:
    """``type base64`` without the comment: what a known_hosts line carries."""
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


def append_trusted(name: str, public_key: str, path: Path | None = None) -> Path:
    """Add ``name public_key`` to gputui's known_hosts (created with mode 0600), in one write.

    Callers hold :func:`transfer.paths.locked` on the file across their check and this append.
    """
    path = path or known_hosts_file()
    ensure_folder(path.parent)
    line = f"{name} {public_key.strip()}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _parse_line(line: str) -> tuple[str | None, str, str] | None:
    fields = line.split()
    if not fields or fields[0].startswith("#"):
        return None
    marker = None
    if fields[0].startswith("@"):
        marker, fields = fields[0], fields[1:]
    if len(fields) < 3:
        return None
    return marker, fields[0], f"{fields[1]} {fields[2]}"


def _matches(name: str, patterns: str) -> bool:
    """OpenSSH's match_hostname: any positive match and no negated one."""
    name = name.lower()
    matched = False
    for pattern in patterns.split(","):
        if pattern.startswith("|"):
            if _hashed_matches(name, pattern):
                matched = True
            continue
        negated = pattern.startswith("!")
        if _glob(pattern.lstrip("!").lower()).fullmatch(name):
            if negated:
                return False
            matched = True
    return matched


def _glob(pattern: str) -> re.Pattern[str]:
    """OpenSSH wildcards are only ``*`` and ``?``: ``[host]:port`` brackets are literal."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    )


def _hashed_matches(name: str, pattern: str) -> bool:
    parts = pattern.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return False
    try:
        salt = base64.b64decode(parts[2])
        expected = base64.b64decode(parts[3])
    except (binascii.Error, ValueError):
        return False
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(digest, expected)
