"""The app's first frame must not pay for what only a connection or a training run needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# asyncssh costs ~140 ms of start-up; torch costs seconds and is not even installed on laptops.
# The rest serve screens, transfers, streams and job actions that the host list does not show:
# they load when first used.
DEFERRED = (
    "asyncssh",
    "torch",
    "plotext",
    "textual_plotext",
    "tui.screens.host_screen",
    "tui.screens.host_form",
    "tui.screens.help",
    "tui.screens.trust_key",
    "transfer.sync.engine",
    "transfer.telemetry.stream",
    "transfer.jobs.host",
    "transfer.jobs.launch",
)


def test_import_tui_app_loads_nothing_the_host_list_does_not_need() -> None:
    probe = (
        "import sys, tui.app\n"
        f"print(' '.join(m for m in {DEFERRED!r} if m in sys.modules))\n"
    )
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path}, timeout=60,
        check=True,
    )
    assert result.stdout.split() == [], f"`import tui.app` loaded: {result.stdout.strip()}"
