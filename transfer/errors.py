"""Expected failures, each with one line a person can act on.

The CLI prints ``str(error)`` on stderr and exits non-zero; the app shows it in a notification.
Anything that is not a GputuiError is a bug and keeps its traceback.
"""

from __future__ import annotations


class GputuiError(Exception):
    """An expected failure with a one-line message for the person at the keyboard."""

    exit_code = 1


class ConfigError(GputuiError):
    """A settings or profile file that cannot be read; the message names file and line."""


class HostNotFound(GputuiError):
    """No host profile with that name."""


class HostUnreachable(GputuiError):
    """The host did not answer (refused, timed out, unknown name, network down)."""


class AuthenticationFailed(GputuiError):
    """The host refused every key we offered."""


class HostKeyError(GputuiError):
    """A host key that gputui will not connect with; carries the key so a dialog can show it.

    ``ca_key_type``, ``ca_fingerprint`` and ``ca_public_key`` name the CA when the key came in a
    host certificate.
    """

    def __init__(
        self,
        message: str,
        host: str,
        fingerprint: str,
        key_type: str,
        *,
        public_key: str = "",
        known_as: str = "",
        ca_key_type: str = "",
        ca_fingerprint: str = "",
        ca_public_key: str = "",
    ) -> None:
        self.host = host
        self.fingerprint = fingerprint
        self.key_type = key_type
        self.public_key = public_key  # OpenSSH one-line form, so a dialog can trust what it showed
        self.known_as = known_as  # the known_hosts name: ``host`` or ``[host]:port``
        self.ca_key_type = ca_key_type
        self.ca_fingerprint = ca_fingerprint
        self.ca_public_key = ca_public_key
        super().__init__(message)


def _certified_by(ca_key_type: str, ca_fingerprint: str, note: str = "") -> str:
    """`` (certified by CA type fingerprint)``, or nothing for a plain key."""
    return f" (certified by CA {ca_key_type} {ca_fingerprint}{note})" if ca_fingerprint else ""


class HostKeyUnknown(HostKeyError):
    """The host presented a key nobody has trusted yet (alone, or certified by an unknown CA)."""

    exit_code = 3

    def __init__(
        self, host: str, fingerprint: str, key_type: str, *, public_key: str = "",
        known_as: str = "", ca_key_type: str = "", ca_fingerprint: str = "",
        ca_public_key: str = "",
    ) -> None:
        ca = _certified_by(ca_key_type, ca_fingerprint, ", a CA not trusted here")
        super().__init__(
            f"unknown host key for {host}: {key_type} {fingerprint}{ca}; "
            f"check it, then run `gputui hosts trust {host}`",
            host, fingerprint, key_type, public_key=public_key, known_as=known_as,
            ca_key_type=ca_key_type, ca_fingerprint=ca_fingerprint, ca_public_key=ca_public_key,
        )


class HostKeyChanged(HostKeyError):
    """The host presented a key that differs from the trusted one: refused, loudly."""

    exit_code = 4

    def __init__(
        self, host: str, fingerprint: str, key_type: str, *, public_key: str = "",
        known_as: str = "", ca_key_type: str = "", ca_fingerprint: str = "",
        ca_public_key: str = "", message: str = "",
    ) -> None:
        ca = _certified_by(ca_key_type, ca_fingerprint)
        super().__init__(
            message
            or f"WARNING: the host key of {host} has CHANGED (now {key_type} {fingerprint}{ca}); "
            "this may be an attack. Connection refused. If the host was rebuilt, remove its old "
            "key from known_hosts and trust it again",
            host, fingerprint, key_type, public_key=public_key, known_as=known_as,
            ca_key_type=ca_key_type, ca_fingerprint=ca_fingerprint, ca_public_key=ca_public_key,
        )


class HostKeyRevoked(HostKeyChanged):
    """The key, or the CA that certified it, is marked ``@revoked``: refused whatever trusts it."""

    def __init__(
        self, host: str, fingerprint: str, key_type: str, *, public_key: str = "",
        known_as: str = "", ca_key_type: str = "", ca_fingerprint: str = "",
        ca_public_key: str = "", ca_revoked: bool = False,
    ) -> None:
        what = (
            f"the CA that certified the host key of {host} ({ca_key_type} {ca_fingerprint})"
            if ca_revoked
            else f"the host key of {host} ({key_type} {fingerprint}"
            f"{_certified_by(ca_key_type, ca_fingerprint)})"
        )
        super().__init__(
            host, fingerprint, key_type, public_key=public_key, known_as=known_as,
            ca_key_type=ca_key_type, ca_fingerprint=ca_fingerprint, ca_public_key=ca_public_key,
            message=f"{what} is marked @revoked in known_hosts; connection refused",
        )


class LinkLost(GputuiError):
    """The connection dropped and could not be restored."""


class RemoteCommandFailed(GputuiError):
    """A remote command that had to succeed did not."""


class RemoteFileError(GputuiError):
    """A file operation failed on the host (missing, permission denied, disk full…)."""


class RemoteFileNotFound(RemoteFileError, FileNotFoundError):
    """Nothing at that path on the host; also a FileNotFoundError, as Link.stat promises."""
