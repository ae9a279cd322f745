"""What every verb shares: where output goes, JSON for scripts, and the usage error."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console

from transfer.errors import GputuiError

if TYPE_CHECKING:
    from transfer.jobs.state import JobMeta


class UsageError(GputuiError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2


def out() -> Console:
    """Human output on stdout (plain when piped); created per call so tests can capture it."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def report_started(host_name: str, meta: JobMeta, *, show_workdir: bool = False) -> None:
    """The job id alone on stdout (for scripts), how it runs and how to follow it on stderr."""
    sys.stdout.write(meta.id + "\n")
    sys.stdout.flush()
    how = f"tmux session {meta.tmux_session}" if meta.tmux_session else "setsid nohup (no tmux)"
    where = f" ({meta.workdir})" if show_workdir else ""
    sys.stderr.write(
        f"started {meta.id} on {host_name} in {how}{where}; follow it: "
        f"gputui logs {host_name} {meta.id} -f\n"
    )
