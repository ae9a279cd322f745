"""A job's log line as the log view shows it: escapes removed, controls made visible, and the
places a search query matches.

A log line is the host's text: it must not drive the terminal, so escape sequences go and other
control characters show as U+FFFD. Search is smart case: a query in lower case ignores case.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style

# Escape sequences, in their 7-bit form (ESC [, ESC ]…) and their one-character C1 form (CSI
# U+009B, OSC U+009D, ended by BEL, ST or U+009C): a host may send either.
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[@-Z\\-_]"
)
_ESCAPE_START = re.compile(r"[\x1b\x90\x98\x9b\x9d-\x9f]")
_NEEDS_CLEANING = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def clean_line(line: str) -> str:
    """Terminal escapes (ESC and C1 forms) removed, tabs expanded, other control characters
    (C0, DEL, C1) made visible: a log line is the host's text and must not drive the terminal."""
    if _ESCAPE_START.search(line):
        line = _ANSI.sub("", line)
    if "\t" in line:
        line = line.expandtabs()
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", line)


def clean_lines(lines: Sequence[str]) -> list[str]:
    """``clean_line`` over a batch, with one scan for the common batch that needs nothing."""
    if not _NEEDS_CLEANING.search("".join(lines)):
        return list(lines)
    return [clean_line(line) if _NEEDS_CLEANING.search(line) else line for line in lines]


def cells(line: str) -> int:
    """The terminal cells ``line`` takes."""
    return len(line) if line.isascii() else cell_len(line)




def matches(line: str, query: str) -> list[int]:
    """Where ``query`` starts in ``line``, smart case (a lower-case query ignores case)."""
    fold = query == query.lower()
    haystack = line.lower() if fold else line
    needle = query.lower() if fold else query
    found: list[int] = []
    at = haystack.find(needle) if needle else -1
    while at >= 0:
        found.append(at)
        at = haystack.find(needle, at + len(needle))
    return found


def highlighted(
    line: str, query: str, current_at: int | None, styles: tuple[Style, Style, Style]
) -> list[Segment]:
    """``line`` in segments: plain text, matches, and the current match (at ``current_at``)."""
    style, match_style, current_style = styles
    segments: list[Segment] = []
    position = 0
    for at in matches(line, query):
        if at > position:
            segments.append(Segment(line[position:at], style))
        end = at + len(query)
        segments.append(Segment(line[at:end], current_style if at == current_at else match_style))
        position = end
    if position < len(line):
        segments.append(Segment(line[position:], style))
    return segments
