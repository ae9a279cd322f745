"""Host profiles: what gputui knows about each machine, stored in ``$GPUTUI_HOME/hosts.yaml``.

The file holds no secrets: keys come from the agent or key files, API tokens from the environment.
It is written atomically with mode 0600, under a lock (``hosts.yaml.lock`` beside it) held from
read to write, so gputui processes changing it at once keep every change. A ``hosts.yaml`` that
is a link (dotfiles) is written through to its target, and the link stays; a target that belongs
to another user is neither written nor chmod-ed. A file that cannot be read (bad YAML, bytes that
are not UTF-8, a folder in its place, a ``GPUTUI_HOME`` that is a file) gives one ConfigError
naming the file and line, and is never overwritten until it is fixed, so nothing is lost.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from transfer.errors import ConfigError, HostNotFound
from transfer.paths import atomic_write, hosts_file, locked

LOCAL = "local"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class HostProfile(BaseModel):
    """One machine that gputui can reach, over SSH or (for ``local``) directly."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str
    transport: Literal["ssh", "local"] = "ssh"
    hostname: str = ""
    user: str | None = None
    port: int = Field(default=22, ge=1, le=65535)
    identity_file: str | None = None
    proxy_jump: str | None = None
    workdir: str = "~/gputui"
    env_activation: str | None = None
    setup_command: str | None = None
    provider: str | None = None
    rate_usd_per_hour: float = Field(default=0.0, ge=0.0)
    stop_command: str | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("use letters, digits, '.', '_' or '-' (at most 64), starting alnum")
        return value

    @field_validator("hostname")
    @classmethod
    def _hostname_has_no_spaces(cls, value: str) -> str:
        if any(c.isspace() for c in value) or value.startswith("-"):
            raise ValueError("a host name has no spaces and does not start with '-'")
        return value

    @property
    def is_local(self) -> bool:
        return self.transport == "local"

    @property
    def address(self) -> str:
        """``user@host:port`` as a person reads it."""
        if self.is_local:
            return "this machine"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port != 22 else ""
        return f"{user}{self.hostname}{port}"

    def to_yaml_dict(self) -> dict[str, Any]:
        """The fields that differ from the defaults, without the name (it is the key)."""
        data = self.model_dump(exclude_defaults=True)
        data.pop("name", None)
        return data


def local_host() -> HostProfile:
    """The built-in host for this machine: no server, no keys.

    ``GPUTUI_LOCAL_WORKDIR``, ``GPUTUI_LOCAL_ENV`` (environment activation) and
    ``GPUTUI_LOCAL_SETUP`` (setup command) set its fields for one run: ``gputui --demo`` uses
    them, and so do tests. A ``local`` entry in hosts.yaml still has the last word.
    """
    return HostProfile(
        name=LOCAL,
        transport="local",
        hostname="localhost",
        workdir=os.environ.get("GPUTUI_LOCAL_WORKDIR", "~/gputui"),
        env_activation=os.environ.get("GPUTUI_LOCAL_ENV") or None,
        setup_command=os.environ.get("GPUTUI_LOCAL_SETUP") or None,
        provider="this machine",
    )


class HostStore:
    """Reads and writes the host profiles file.

    ``hosts.yaml`` looks like::

        hosts:
          a100:
            hostname: 203.0.113.7
            user: root
            port: 22022
            rate_usd_per_hour: 1.89
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or hosts_file()

    def load(self) -> list[HostProfile]:
        """All profiles, ``local`` first. Raises ConfigError for a file that cannot be read."""
        hosts = [local_host()]
        text = self._read_text()
        if text is None:
            return hosts
        try:
            node = yaml.compose(text)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{self.path}{where}: invalid YAML: {problem}") from None
        if data is None:
            return hosts
        if not isinstance(data, dict) or not isinstance(data.get("hosts", {}), dict):
            raise ConfigError(f"{self.path}:1: expected a mapping 'hosts:' of name → profile")
        for name, fields in (data.get("hosts") or {}).items():
            line = _line_of(node, ["hosts", name])
            if fields is None:
                fields = {}
            if not isinstance(fields, dict):
                raise ConfigError(f"{self.path}:{line}: host {name!r} must be a mapping of fields")
            if str(name) == LOCAL and fields.get("transport", "local") == "local":
                # The built-in host may be tuned (workdir, rate) but stays local.
                base = local_host().model_dump()
                base.update(fields)
                fields = base
            try:
                hosts = [h for h in hosts if h.name != str(name)]
                hosts.append(HostProfile(**{**fields, "name": str(name)}))
            except ValidationError as exc:
                err = exc.errors()[0]
                field = str(err["loc"][0]) if err["loc"] else ""
                at = _line_of(node, ["hosts", name, field]) if field else line
                raise ConfigError(
                    f"{self.path}:{at}: host {name!r}, field {field!r}: {err['msg']}"
                ) from None
        return hosts

    def get(self, name: str) -> HostProfile:
        for host in self.load():
            if host.name == name:
                return host
        raise HostNotFound(f"no host named {name!r}; see `gputui hosts list`")

    def _read_text(self) -> str | None:
        """The file's text, None when there is none; anything else that stops reading it is
        one ConfigError line. A loose mode is tightened on the open file, and only on a file
        of the person's own."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            raise ConfigError(f"{self.path.parent} is not a folder; move that file away") from None
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise ConfigError(f"{self.path} is a folder, not a file; move it away")
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(f"{self.path} is not a regular file; move it away")
            if info.st_uid == os.geteuid() and info.st_mode & 0o077:
                os.fchmod(fd, 0o600)  # not readable by others, though it holds no secrets
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read()
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ConfigError(
                f"{self.path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); fix that line"
            ) from None

    def update(
        self, change: Callable[[list[HostProfile]], list[HostProfile]]
    ) -> list[HostProfile]:
        """Read the profiles, ``change`` them and write the result, all under the file's lock.

        ``change`` may raise (a name taken, a name missing) to write nothing.
        """
        with locked(self.path):
            hosts = self.load()
            changed = change(list(hosts))
            if changed != hosts:
                self.save(changed)
            return changed

    def save(self, hosts: list[HostProfile]) -> None:
        """Write all profiles atomically (temp file, fsync, rename) with mode 0600.

        Callers that read first hold the lock: :meth:`update` does both.
        """
        local_default = local_host()
        entries: dict[str, Any] = {}
        for host in hosts:
            if host.name == LOCAL and host == local_default:
                continue
            entries[host.name] = host.to_yaml_dict()
        text = yaml.safe_dump({"hosts": entries}, sort_keys=False, allow_unicode=True)
        target = self._write_target()
        try:
            atomic_write(target, text)
        except OSError as exc:
            raise ConfigError(f"{target}: not saved: {exc.strerror or exc}") from None

    def upsert(self, host: HostProfile) -> None:
        """Add or replace one profile, keeping the others as they are."""
        self.update(lambda hosts: [h for h in hosts if h.name != host.name] + [host])

    def remove(self, name: str) -> None:
        if name == LOCAL:
            raise ConfigError("the built-in 'local' host cannot be removed")

        def without(hosts: list[HostProfile]) -> list[HostProfile]:
            if not any(h.name == name for h in hosts):
                raise HostNotFound(f"no host named {name!r}; see `gputui hosts list`")
            return [h for h in hosts if h.name != name]

        self.update(without)

    def _write_target(self) -> Path:
        """The file to replace: ``hosts.yaml``, or the file a link there points to (so the
        link stays), unless that file is another user's or not a regular file."""
        if not self.path.is_symlink():
            return self.path
        target = Path(os.path.realpath(self.path))
        try:
            info = target.stat()
        except FileNotFoundError:
            return target  # a link to a file not made yet: made there
        except OSError as exc:
            raise ConfigError(f"{self.path} links to {target}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{self.path} links to {target}, not a regular file; not written")
        if info.st_uid != os.geteuid():
            raise ConfigError(
                f"{self.path} links to {target}, which belongs to another user; not written"
            )
        return target


def _line_of(node: yaml.Node | None, keys: list[Any]) -> int:
    """1-based line of the value at ``keys`` in a composed YAML tree (best effort)."""
    line = 1
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if str(key_node.value) == str(key):
                line = key_node.start_mark.line + 1
                node = value_node
                break
        else:
            break
    return line
