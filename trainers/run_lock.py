"""One trainer per output folder: a second one would interleave checkpoints."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from trainers.modeling import TrainerError


class RunLock:
    """An exclusive ``flock`` on ``<output>/.lock`` that names the holding pid for the refusal."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._handle = (folder / ".lock").open("a+")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            holder = self._handle.read().strip() or "another process"
            self._handle.close()
            message = f"{folder} is in use by a running trainer (pid {holder})"
            raise TrainerError(message) from None
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(str(os.getpid()))
        self._handle.flush()

    def release(self) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
