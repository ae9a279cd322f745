"""What every verb shares: where output goes, JSON for scripts, error lines, the usage error.

Text a host sent reaches the terminal only through ``tui.text`` (control characters shown
escaped) and never through rich markup: error lines go out through :func:`print_error`, JSON
keeps every control character a ``\\u`` escape.
"""

from __future__ import annotations

import json
import re
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console

from transfer.errors import GputuiError
from tui.text import terminal_safe

if TYPE_CHECKING:
    from transfer.jobs.state import JobMeta


class UsageError(GputuiError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2


def out() -> Console:
    """Human output on stdout (plain when piped); created per call so tests can capture it."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


# What ``json.dumps(ensure_ascii=False)`` leaves raw but a terminal would act on (C1 controls)
# or cannot be written out (lone surrogates); JSON text holds them only inside strings.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\ud800-\udfff]")


def print_json(data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    text = _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def error_line(message: str) -> str:
    """``gputui: MESSAGE`` for stderr, control characters shown escaped whoever wrote them."""
    return f"gputui: {terminal_safe(message)}\n"


def print_error(message: str) -> None:
    sys.stderr.write(error_line(message))
    sys.stderr.flush()


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
