"""Where a keeper listens, and when a command may use one.

One keeper serves one set-up: the socket's name is a digest of what a push depends on (the
gputui home, the ssh folder, the agent, the interpreter and the code itself), so a changed
setting or an upgraded gputui gets a keeper of its own and never a stale one. Sockets live in a
folder only this user can enter. Standard library only: the command imports this before
anything else.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path

from transfer.paths import gputui_home

PROTOCOL = 1
DEFAULT_IDLE_S = 300.0
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, fewer elsewhere


class KeeperUnavailable(Exception):
    """No keeper can be used here; the command does the work itself."""


def idle_seconds() -> float:
    """``GPUTUI_KEEP_S``: how long a keeper waits for the next command; 0 turns it off."""
    text = os.environ.get("GPUTUI_KEEP_S", "")
    try:
        return max(float(text), 0.0) if text else DEFAULT_IDLE_S
    except ValueError:
        return DEFAULT_IDLE_S


def run_folder() -> Path:
    """``$GPUTUI_RUN_DIR``, else ``$XDG_RUNTIME_DIR/gputui``, else ``/tmp/gputui-UID``: made
    with mode 0700, and refused when another user could enter it."""
    chosen = os.environ.get("GPUTUI_RUN_DIR")
    if chosen:
        folder = Path(chosen)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        folder = Path(os.environ["XDG_RUNTIME_DIR"]) / "gputui"
    else:
        folder = Path("/tmp") / f"gputui-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError as exc:
        raise KeeperUnavailable(f"cannot use {folder}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise KeeperUnavailable(f"{folder} is not a private folder of this user")
    return folder


def code_stamp() -> int:
    """The newest modification time among gputui's transfer code: a keeper started before an
    upgrade or an edit is not used afterwards."""
    newest = 0
    pending = [str(Path(__file__).resolve().parents[1])]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                    pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    newest = max(newest, entry.stat().st_mtime_ns)
    return newest


def keeper_name() -> str:
    """The digest that names this set-up's keeper."""
    env = os.environ
    settings = sorted((k, v) for k, v in env.items() if k.startswith("GPUTUI_"))
    identity = [
        PROTOCOL,
        os.path.abspath(gputui_home()),
        settings,
        env.get("SSH_AUTH_SOCK", ""),
        env.get("HOME", ""),
        sys.executable,
        code_stamp(),
    ]
    digest = hashlib.sha256(json.dumps(identity).encode("utf-8", "surrogateescape"))
    return f"keeper-{digest.hexdigest()[:20]}"


def socket_path() -> Path:
    """This set-up's keeper socket (which may not exist yet)."""
    path = run_folder() / f"{keeper_name()}.sock"
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise KeeperUnavailable(f"socket path too long: {path}")
    return path


def log_path(socket: Path) -> Path:
    """Where the keeper of ``socket`` writes what it did (started, failed, ended)."""
    return socket.with_suffix(".log")
