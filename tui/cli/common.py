"""What every verb shares: where output goes, JSON for scripts, and the usage error."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from transfer.errors import GputuiError


class UsageError(GputuiError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2


def out() -> Console:
    """Human output on stdout (plain when piped); created per call so tests can capture it."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
