"""Import host profiles from an OpenSSH client config (``~/.ssh/config`` by default).

Each concrete ``Host`` alias becomes a profile whose fields are resolved the way ``ssh`` resolves
them: blocks are read in order, ``Include`` is followed where it stands, and the first value found
for a keyword wins, so ``Host *`` defaults at the end fill in what the alias left open. Aliases
with wildcards or negations are patterns, not hosts, and are skipped. ``Match`` blocks are
skipped too: their conditions depend on the connection, not the name.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from transfer.errors import ConfigError
from transfer.hosts import HostProfile

_KEYS = {"hostname", "user", "port", "identityfile", "proxyjump"}
_MAX_INCLUDE_DEPTH = 16


@dataclass
class _Block:
    patterns: list[str]
    is_match: bool = False
    options: list[tuple[str, str, str]] = field(default_factory=list)  # key, value, "file:line"

    def applies_to(self, alias: str) -> bool:
        if self.is_match:
            return False
        matched = False
        for pattern in self.patterns:
            negated = pattern.startswith("!")
            if fnmatch.fnmatchcase(alias, pattern.lstrip("!")):
                if negated:
                    return False
                matched = True
        return matched


def default_ssh_dir() -> Path:
    """``~/.ssh``, or ``$GPUTUI_SSH_DIR`` so tests never read the person's own files."""
    return Path(os.environ.get("GPUTUI_SSH_DIR") or Path.home() / ".ssh")


def import_ssh_config(path: Path | None = None) -> list[HostProfile]:
    """Every concrete alias in the config, as a profile named after the alias."""
    path = path or default_ssh_dir() / "config"
    if not path.exists():
        raise ConfigError(f"{path}: no such ssh config file")
    blocks: list[_Block] = [_Block(patterns=["*"])]  # options before any Host line apply to all
    _parse(path, blocks, path.parent, depth=0)
    aliases: list[str] = []
    for block in blocks[1:]:
        if block.is_match:
            continue
        for pattern in block.patterns:
            if any(c in pattern for c in "*?!") or pattern in aliases:
                continue
            aliases.append(pattern)
    return [_profile_for(alias, blocks) for alias in aliases]


def _parse(path: Path, blocks: list[_Block], ssh_dir: Path, depth: int) -> None:
    if depth > _MAX_INCLUDE_DEPTH:
        raise ConfigError(f"{path}: Include nested more than {_MAX_INCLUDE_DEPTH} deep")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, value = _split(line)
        if not value:
            raise ConfigError(f"{path}:{number}: {key!r} needs a value")
        where = f"{path}:{number}"
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        lowered = key.lower()
        if lowered == "host":
            blocks.append(_Block(patterns=words))
        elif lowered == "match":
            blocks.append(_Block(patterns=[], is_match=True))
        elif lowered == "include":
            for pattern in words:
                expanded = os.path.expanduser(pattern)
                if not os.path.isabs(expanded):
                    expanded = str(ssh_dir / expanded)
                for included in sorted(glob.glob(expanded)):
                    _parse(Path(included), blocks, ssh_dir, depth + 1)
        elif lowered in _KEYS:
            blocks[-1].options.append((lowered, words[0] if words else value, where))


def _split(line: str) -> tuple[str, str]:
    """``Key value``, ``Key=value`` and ``Key = value`` are all valid."""
    head, sep, tail = line.partition("=")
    if sep and not any(c.isspace() for c in head.strip()):
        return head.strip(), tail.strip()
    parts = line.split(None, 1)
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


def _profile_for(alias: str, blocks: list[_Block]) -> HostProfile:
    found: dict[str, tuple[str, str]] = {}
    for block in blocks:
        if block.applies_to(alias):
            for key, value, where in block.options:
                found.setdefault(key, (value, where))
    fields: dict[str, object] = {"name": _profile_name(alias), "hostname": alias}
    if "hostname" in found:
        fields["hostname"] = found["hostname"][0].replace("%h", alias)
    if "user" in found:
        fields["user"] = found["user"][0]
    if "port" in found:
        value, where = found["port"]
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise ConfigError(f"{where}: Port {value!r} is not a port number")
        fields["port"] = int(value)
    if "identityfile" in found:
        fields["identity_file"] = found["identityfile"][0]
    if "proxyjump" in found and found["proxyjump"][0].lower() != "none":
        fields["proxy_jump"] = found["proxyjump"][0]
    return HostProfile.model_validate(fields)


def _profile_name(alias: str) -> str:
    """Host aliases may hold characters a profile name may not; keep the rest."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in alias).strip("-._")
    return cleaned[:64] or "host"
