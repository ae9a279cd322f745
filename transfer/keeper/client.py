"""The command's side of the keeper: send one push or pull, show its events, return its result.

Standard library only, so a push through a running keeper costs the interpreter's start-up and
little more. The first command starts the keeper (``python -m transfer.keeper``) and waits for
its socket; if it cannot start, the command does the work itself.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transfer.backoff import Backoff
from transfer.errors import GputuiError
from transfer.keeper.address import KeeperUnavailable, idle_seconds, log_path, socket_path

START_TIMEOUT_S = 20.0
#: Looking for a new keeper's socket: often, until it answers or START_TIMEOUT_S has passed.
START_BACKOFF = Backoff(initial_s=0.005, factor=1.0, cap_s=0.005, deadline_s=START_TIMEOUT_S)
PATH_SETTINGS = ("GPUTUI_HOME", "GPUTUI_SSH_DIR", "GPUTUI_RUN_DIR", "GPUTUI_LOCAL_WORKDIR")


class KeeperLost(GputuiError):
    """The keeper ended in the middle of a command."""


def sync(host: str, request: dict[str, Any], on_event: Callable[[dict[str, Any]], None]) -> (
    dict[str, Any]
):
    """Run one push or pull in the keeper; its result as ``SyncResult.to_json()`` gives it.

    Raises KeeperUnavailable when no keeper can be used (nothing was done), GputuiError with the
    keeper's message and exit code for an expected failure. Interrupting (Ctrl-C) closes the
    socket, which makes the keeper stop the transfer, resumable as always.
    """
    if idle_seconds() <= 0:
        raise KeeperUnavailable("GPUTUI_KEEP_S=0")
    path = socket_path()
    with _connect(path) as conn:
        message = {"op": "sync", "host": host, "request": request}
        conn.sendall(json.dumps(message).encode() + b"\n")
        for line in conn.makefile("rb"):
            reply = json.loads(line)
            if "event" in reply:
                on_event(reply)
            elif "result" in reply:
                result: dict[str, Any] = reply["result"]
                return result
            elif "error" in reply:
                error = GputuiError(reply["error"])
                error.exit_code = int(reply.get("exit_code", 1))
                raise error
    raise KeeperLost(f"the connection keeper ended unexpectedly (its log: {log_path(path)}); "
                     "run the same command again to resume")


def stop(path: Path | None = None) -> bool:
    """Ask this set-up's keeper to end now; False when none was running."""
    try:
        conn = _dial(path or socket_path())
    except OSError:
        return False
    with conn:
        conn.sendall(b'{"op": "quit"}\n')
        conn.recv(64)
    return True


def _dial(path: Path) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        raise
    return conn


def _connect(path: Path) -> socket.socket:
    """The running keeper, or a new one once its socket answers."""
    try:
        return _dial(path)
    except OSError:
        pass
    process = _spawn(path)
    attempts = START_BACKOFF.start(failing=True)
    while (delay := attempts.next_delay()) is not None:
        try:
            return _dial(path)
        except OSError:
            pass
        # A keeper that lost the race to another one exits 0, and the winner answers soon.
        if process.poll() not in (None, 0):
            break
        time.sleep(delay)
    raise KeeperUnavailable(f"the connection keeper did not start (its log: {log_path(path)})")


def _spawn(path: Path) -> Any:
    """``python -m transfer.keeper``, run from the folder that holds this ``transfer`` package:
    a ``transfer`` folder in the person's current folder must not stand in for it. Path
    settings are made absolute for the same reason."""
    import subprocess

    env = os.environ.copy()
    for name in PATH_SETTINGS:
        if env.get(name):
            env[name] = os.path.abspath(env[name])
    log_fd = os.open(log_path(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(log_fd, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "transfer.keeper", "--socket", str(path),
             "--idle", str(idle_seconds())],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            close_fds=True, env=env, cwd=Path(__file__).resolve().parents[2],
        )
