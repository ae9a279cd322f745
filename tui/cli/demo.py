"""``gputui --demo`` (what ``make run`` opens): the whole loop on this machine, no GPU, no server.

The demo project is gputui's own checkout: ``trainers/`` and ``configs/dev.yaml`` with its chat
data. The app opens on the built-in ``local`` host, set up for this run only (nothing is written
to hosts.yaml), through the variables that ``transfer.hosts.local_host`` reads:

- ``GPUTUI_LOCAL_WORKDIR``  ``~/gputui-demo``: where ``p`` pushes the project and jobs run
- ``GPUTUI_LOCAL_ENV``      activates the Python environment gputui runs from (the
                            checkout's ``.venv`` under ``make run``), so the trainer finds torch
- ``GPUTUI_LOCAL_SETUP``    what ``u`` runs: a check that the training stack imports there

A variable that is already set wins, so the same three make the CLI behave the same way.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import MutableMapping
from pathlib import Path

from transfer.errors import GputuiError

DEMO_CONFIG = "configs/dev.yaml"
DEMO_WORKDIR = "~/gputui-demo"
SETUP_CHECK = (
    "python -c 'import torch, transformers, peft; "
    'print("torch", torch.__version__, "| transformers", transformers.__version__, '
    '"| peft", peft.__version__, "| cuda", torch.cuda.is_available())'
    "'"
)


def demo_project() -> Path:
    """The checkout gputui runs from, which holds the demo project."""
    root = Path(__file__).resolve().parents[2]  # <root>/tui/cli/demo.py
    if not (root / DEMO_CONFIG).is_file() or not (root / "trainers" / "lora.py").is_file():
        raise GputuiError(
            f"the demo needs gputui's source checkout ({DEMO_CONFIG} next to trainers/); "
            f"{root} has none: clone the repository and run `make run` there"
        )
    return root


def job_environment(prefix: str = sys.prefix, executable: str = sys.executable) -> str:
    """The shell line that gives a job this Python: its venv's activate script, else its PATH."""
    activate = Path(prefix) / "bin" / "activate"
    if activate.is_file():
        return f". {shlex.quote(str(activate))}"
    return f'PATH={shlex.quote(str(Path(executable).parent))}:"$PATH"'


def demo_settings() -> dict[str, str]:
    return {
        "GPUTUI_LOCAL_WORKDIR": DEMO_WORKDIR,
        "GPUTUI_LOCAL_ENV": job_environment(),
        "GPUTUI_LOCAL_SETUP": SETUP_CHECK,
    }


def prepare_demo(environ: MutableMapping[str, str] = os.environ) -> Path:
    """Set up the local host for the demo and move into the demo project; return its folder."""
    project = demo_project()
    for name, value in demo_settings().items():
        if not environ.get(name):
            environ[name] = value
    os.chdir(project)
    return project
