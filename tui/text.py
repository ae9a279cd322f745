"""Text that came from a host, made safe for a terminal: one home for the rule.

A host is untrusted: a job name, a file name, an error line or a GPU name may carry escape
sequences (an OSC 52 clipboard write, a screen clear, the one-byte C1 CSI U+009B). Everything a
host sent is passed through :func:`terminal_safe` (or :func:`one_line`) before the CLI or the app
shows it, and never through rich markup.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls. Newline and tab are kept only where a caller allows them.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LAYOUT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\x1b"}.get(
        char, f"\\x{ord(char):02x}"
    )


def terminal_safe(text: str, *, keep_layout: bool = False) -> str:
    """``text`` with every control character shown escaped (``\\x1b``, ``\\x9b``, ``\\n``…).

    ``keep_layout`` keeps newlines and tabs (a block of log or error lines). Undecodable bytes
    that came through as surrogates are shown escaped too.
    """
    pattern = _CONTROL_BUT_LAYOUT if keep_layout else _CONTROL
    safe = pattern.sub(_escaped, text)
    if any("\udc80" <= c <= "\udcff" for c in safe):
        safe = "".join(
            f"\\x{ord(c) - 0xDC00:02x}" if "\udc80" <= c <= "\udcff" else c for c in safe
        )
    return safe


def one_line(text: str, limit: int = 40) -> str:
    """A name as one line: control characters shown escaped, long names shortened with ``…``."""
    shown = terminal_safe(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
