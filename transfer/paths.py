"""Where gputui keeps its state on the laptop."""

from __future__ import annotations

import os
from pathlib import Path


def gputui_home() -> Path:
    """``$GPUTUI_HOME``, else ``~/.config/gputui``; created with mode 0700 on first use."""
    home = Path(os.environ.get("GPUTUI_HOME") or Path.home() / ".config" / "gputui")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home


def hosts_file() -> Path:
    return gputui_home() / "hosts.yaml"


def known_hosts_file() -> Path:
    return gputui_home() / "known_hosts"
