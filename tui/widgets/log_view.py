"""A log view that keeps up with a job printing tens of thousands of lines a second.

Lines arrive in batches (one message per batch, never one per line) and land in a bounded list;
the view draws only the rows on screen through Textual's Line API and caches the strips it drew.
It follows the tail until the person scrolls up, then holds still and counts "+N new lines"
until they come back (End, ``f``, or a click on the count). The full log stays on the host.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from time import monotonic

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events, on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.cache import LRUCache
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Static

from tui.text import terminal_safe

#: Lines kept in memory; older ones are dropped from the view (the host keeps the whole log).
DEFAULT_MAX_LINES = 100_000
#: How often new lines are drawn at most, however fast they come.
FRAME_RATE = 30

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


def _cells(line: str) -> int:
    return len(line) if line.isascii() else cell_len(line)


class LogLines(ScrollView, can_focus=True):
    """The rows of the log, drawn on demand; a bounded buffer of cleaned lines."""

    COMPONENT_CLASSES = {"log-lines--match", "log-lines--current", "log-lines--partial"}

    DEFAULT_CSS = """
    LogLines {
        background: $surface;
        color: $text;
        overflow-y: scroll;
        overflow-x: auto;
        & > .log-lines--match { background: $warning 40%; }
        & > .log-lines--current { background: $warning; color: $text-warning; text-style: bold; }
        & > .log-lines--partial { color: $text-muted; }
    }
    """

    BINDINGS = [
        Binding("end,G", "follow", "Follow", show=False),
        Binding("home,g", "scroll_home", "Top", show=False),
    ]

    following: var[bool] = var(True)
    """True while the view sticks to the newest line."""
    new_lines: var[int] = var(0)
    """Lines that arrived since following paused."""

    class FollowChanged(Message):
        """Following paused or resumed, or the count of unseen lines changed."""

        def __init__(self, following: bool, new_lines: int) -> None:
            super().__init__()
            self.following = following
            self.new_lines = new_lines

    def __init__(
        self,
        *,
        max_lines: int = DEFAULT_MAX_LINES,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.max_lines = max(1, max_lines)
        self._lines: list[str] = []
        self._dropped = 0
        self._partial: str | None = None
        self._max_width = 0
        self._wrap = False
        self._wrap_width = 0
        # With wrapping: absolute end row of each line, and the end row of the last dropped line.
        self._row_ends: list[int] = []
        self._row_base = 0
        self._strips: LRUCache[tuple[int, int], Strip] = LRUCache(256)
        self._programmatic = False
        self._query = ""
        self._match: tuple[int, int, int] | None = None
        self._styles: tuple[Style, Style, Style, Style] | None = None
        self._dropped_rows = 0
        self._shown_at = 0.0
        self._show_pending = False
        self.total_received = 0

    # -- content ---------------------------------------------------------------------------
    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def lines(self) -> Sequence[str]:
        """The lines held now (the newest ``max_lines``)."""
        return self._lines

    @property
    def dropped(self) -> int:
        """Lines dropped from the front to keep the buffer bounded."""
        return self._dropped

    @property
    def partial(self) -> str | None:
        return self._partial

    def append(self, lines: Sequence[str], partial: str | None = None) -> None:
        """Add a batch of lines (already cleaned) and set the unfinished last line."""
        if not lines and partial == self._partial:
            return
        self.total_received += len(lines)
        self._lines.extend(lines)
        if lines:
            width = max(map(len, lines))
            if not all(map(str.isascii, lines)):
                width = max(map(_cells, lines))
            if width > self._max_width:
                self._max_width = width
            if self._wrap:
                self._extend_rows(lines)
        self._partial = partial
        self._dropped_rows += self._trim()
        if not self.following and lines:
            self.new_lines += len(lines)
        # Show the new lines at most FRAME_RATE times a second: under a flood, each batch would
        # otherwise cost a full repaint, and the repaints' garbage the collector's pauses.
        now = monotonic()
        if now - self._shown_at >= 1 / FRAME_RATE:
            self._show_new_lines()
        elif not self._show_pending:
            self._show_pending = True
            self.set_timer(self._shown_at + 1 / FRAME_RATE - now, self._show_new_lines)

    def _show_new_lines(self) -> None:
        self._show_pending = False
        self._shown_at = monotonic()
        dropped_rows, self._dropped_rows = self._dropped_rows, 0
        self._update_virtual_size()
        if self.following:
            self._scroll_quietly(self.max_scroll_y)
        elif dropped_rows:
            self._scroll_quietly(max(0, round(self.scroll_y) - dropped_rows))
        self.refresh()

    def clear(self) -> None:
        self._lines.clear()
        self._row_ends.clear()
        self._dropped = self._row_base = self._max_width = self._dropped_rows = 0
        self._partial = None
        self._match = None
        self._strips.clear()
        self._update_virtual_size()
        self.refresh()

    def _trim(self) -> int:
        """Drop the oldest lines beyond ``max_lines``; return the rows they took."""
        excess = len(self._lines) - self.max_lines
        if excess <= 0:
            return 0
        del self._lines[:excess]
        self._dropped += excess
        if not self._wrap:
            return excess
        new_base = self._row_ends[excess - 1]
        rows = new_base - self._row_base
        del self._row_ends[:excess]
        self._row_base = new_base
        return rows

    # -- rows and wrapping -----------------------------------------------------------------
    @property
    def wrap(self) -> bool:
        return self._wrap

    def set_wrap(self, wrap: bool) -> None:
        if self._show_pending:
            self._show_new_lines()  # settle rows counted the old way first
        top_line, _ = self._line_at_row(round(self.scroll_y))
        self._wrap = wrap
        self._rebuild_rows()
        if not self.following:
            self._scroll_quietly(self._first_row_of(top_line))

    def _content_width(self) -> int:
        return max(1, self.scrollable_content_region.width or self.size.width or 80)

    def _rows_of(self, line: str) -> int:
        return max(1, -(-_cells(line) // self._wrap_width))

    def _extend_rows(self, lines: Iterable[str]) -> None:
        end = self._row_ends[-1] if self._row_ends else self._row_base
        ends = self._row_ends
        width = self._wrap_width
        for line in lines:
            cells = len(line) if line.isascii() else cell_len(line)
            end += max(1, -(-cells // width))
            ends.append(end)

    def _rebuild_rows(self) -> None:
        self._row_ends = []
        self._row_base = 0
        self._strips.clear()
        if self._wrap:
            self._wrap_width = self._content_width()
            self._extend_rows(self._lines)
        self._update_virtual_size()
        if self.following:
            self._scroll_quietly(self.max_scroll_y)
        self.refresh()

    def _total_rows(self) -> int:
        if not self._wrap:
            rows = len(self._lines)
        else:
            rows = (self._row_ends[-1] if self._row_ends else self._row_base) - self._row_base
        if self._partial is not None:
            rows += self._rows_of(self._partial) if self._wrap else 1
        return rows

    def _update_virtual_size(self) -> None:
        width = self._wrap_width if self._wrap else self._max_width
        self.virtual_size = Size(width, self._total_rows())

    def _line_at_row(self, row: int) -> tuple[int, int]:
        """(line index, row within that line) of a content row; index may be the partial."""
        if not self._wrap:
            return row, 0
        absolute = row + self._row_base
        index = bisect_right(self._row_ends, absolute)
        start = self._row_ends[index - 1] if index else self._row_base
        return index, absolute - start

    def _first_row_of(self, index: int) -> int:
        if not self._wrap:
            return index
        index = min(index, len(self._row_ends))
        start = self._row_ends[index - 1] if index else self._row_base
        return start - self._row_base

    def on_resize(self, event: events.Resize) -> None:
        if self._wrap and self._content_width() != self._wrap_width:
            self._rebuild_rows()

    # -- following -------------------------------------------------------------------------
    def _scroll_quietly(self, y: float) -> None:
        """Scroll without counting it as the person scrolling."""
        self._programmatic = True
        try:
            self.scroll_to(y=y, animate=False, force=True)
        finally:
            self._programmatic = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._programmatic:
            return
        at_end = new_value >= self.max_scroll_y - 0.5
        if at_end != self.following:
            self.following = at_end
        if at_end and self.new_lines:
            self.new_lines = 0

    def watch_following(self, following: bool) -> None:
        if following:
            self.new_lines = 0
        self.post_message(self.FollowChanged(following, self.new_lines))

    def watch_new_lines(self, count: int) -> None:
        self.post_message(self.FollowChanged(self.following, count))

    def action_follow(self) -> None:
        """Jump to the newest line and stick to it."""
        self.following = True
        self.new_lines = 0
        self._scroll_quietly(self.max_scroll_y)

    def pause(self) -> None:
        self.following = False

    # -- search ----------------------------------------------------------------------------
    @property
    def match(self) -> tuple[int, int, int] | None:
        """(absolute line number, start, end) of the current match."""
        return self._match

    def search(self, query: str, *, forward: bool = True) -> bool:
        """Find the next (or previous) line holding ``query``; smart case. True when found."""
        if query != self._query:
            self._query = query
            self._match = None
        self._strips.clear()
        if not query:
            self._match = None
            self.refresh()
            return False
        fold = query == query.lower()
        needle = query.lower() if fold else query
        lines = self._lines
        count = len(lines)
        if self._match is not None and self._match[0] >= self._dropped:
            origin = self._match[0] - self._dropped
        else:
            top, _ = self._line_at_row(round(self.scroll_y))
            origin = top - 1 if forward else top + 1
        order = (
            [*range(origin + 1, count), *range(0, min(origin + 1, count))]
            if forward
            else [*range(origin - 1, -1, -1), *range(count - 1, max(origin - 1, -1), -1)]
        )
        for index in order:
            line = lines[index]
            at = (line.lower() if fold else line).find(needle)
            if at >= 0:
                self._match = (index + self._dropped, at, at + len(query))
                self._show_line(index)
                return True
        self._match = None
        self.refresh()
        return False

    def _show_line(self, index: int) -> None:
        self.pause()
        row = self._first_row_of(index)
        height = self.scrollable_content_region.height or self.size.height
        self._scroll_quietly(max(0, row - height // 2))
        if not self._wrap:
            _, start, end = self._match or (0, 0, 0)
            width = self.scrollable_content_region.width or self.size.width
            if end > self.scroll_x + width or start < self.scroll_x:
                self.scroll_to(x=max(0, start - width // 3), animate=False)
        self.refresh()

    # -- drawing ---------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._styles = None

    def _style_set(self) -> tuple[Style, Style, Style, Style]:
        """Base, match, current-match and partial-line styles, looked up once per style change."""
        if self._styles is None:
            base = self.rich_style
            self._styles = (
                base,
                base + self.get_component_rich_style("log-lines--match"),
                base + self.get_component_rich_style("log-lines--current"),
                base + self.get_component_rich_style("log-lines--partial"),
            )
        return self._styles

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width or self.size.width
        style, _, _, partial_style = self._style_set()
        index, sub_row = self._line_at_row(scroll_y + y)
        if index < len(self._lines):
            line = self._lines[index]
            if not self._query and not self._wrap and line.isascii():
                # The common case, built directly: no intermediate strip to crop.
                text = line[scroll_x : scroll_x + width]
                if len(text) < width:
                    text += " " * (width - len(text))
                return Strip([Segment(text, style)], width)
            strip = self._line_strip(index)
        elif index == len(self._lines) and self._partial is not None:
            strip = Strip([Segment(self._partial, partial_style)])
        else:
            return Strip.blank(width, style)
        if self._wrap:
            start = sub_row * self._wrap_width
            return strip.crop_extend(start, start + width, style)
        return strip.crop_extend(scroll_x, scroll_x + width, style)

    def _line_strip(self, index: int) -> Strip:
        absolute = index + self._dropped
        key = (absolute, self._wrap_width if self._wrap else 0)
        cached = self._strips.get(key)
        if cached is not None:
            return cached
        line = self._lines[index]
        style = self._style_set()[0]
        if self._query:
            strip = Strip(self._highlighted(line, absolute))
        else:
            strip = Strip([Segment(line, style)], _cells(line))
        self._strips[key] = strip
        return strip

    def _highlighted(self, line: str, absolute: int) -> list[Segment]:
        query = self._query
        fold = query == query.lower()
        haystack = line.lower() if fold else line
        needle = query.lower() if fold else query
        style, match_style, current_style, _ = self._style_set()
        current = self._match
        segments: list[Segment] = []
        position = 0
        at = haystack.find(needle)
        while at >= 0 and needle:
            if at > position:
                segments.append(Segment(line[position:at], style))
            end = at + len(needle)
            is_current = current is not None and current[0] == absolute and current[1] == at
            segments.append(Segment(line[at:end], current_style if is_current else match_style))
            position = end
            at = haystack.find(needle, end)
        if position < len(line):
            segments.append(Segment(line[position:], style))
        return segments


class LogView(Vertical):
    """The log of one job: lines, a "+N new lines" badge, a search box and a status line."""

    DEFAULT_CSS = """
    LogView {
        height: 1fr;
        LogLines { height: 1fr; }
        #log-search { display: none; }
        #log-search.-shown { display: block; }
        #log-bar { height: 1; background: $panel; }
        #log-new-lines {
            width: auto;
            padding: 0 1;
            background: $accent;
            color: $text-accent;
            text-style: bold;
            display: none;
        }
        #log-new-lines.-shown { display: block; }
        #log-status {
            width: 1fr;
            padding: 0 1;
            color: $text-muted;
            text-wrap: nowrap;
            text-overflow: ellipsis;
        }
    }
    """

    BINDINGS = [
        Binding("slash", "start_search", "Search"),
        Binding("n", "search_next", "Next", show=False),
        Binding("N", "search_previous", "Previous", show=False),
        Binding("w", "toggle_wrap", "Wrap"),
        Binding("f", "follow", "Follow"),
        Binding("escape", "close_search", "Close search", show=False),
    ]

    class LinesArrived(Message):
        """One batch of lines for the view; producers post one per batch, from any thread."""

        def __init__(
            self, lines: Sequence[str], partial: str | None = None, *, cleaned: bool = False
        ) -> None:
            super().__init__()
            self.lines = lines
            self.partial = partial
            self.cleaned = cleaned

    def __init__(
        self,
        *,
        max_lines: int = DEFAULT_MAX_LINES,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._max_lines = max_lines
        self._note = ""
        self._status_text = ""

    def compose(self) -> ComposeResult:
        yield LogLines(max_lines=self._max_lines, id="log-lines")
        yield Input(
            placeholder="search: Enter finds, n/N next/previous, Esc closes",
            id="log-search",
            compact=True,
        )
        with Horizontal(id="log-bar"):
            yield Static("", id="log-new-lines")
            yield Static("", id="log-status", markup=False)

    @property
    def log_lines(self) -> LogLines:
        return self.query_one(LogLines)

    def on_mount(self) -> None:
        self._update_status()
        # The line count changes with every batch; the status line catches up four times a second.
        self.set_interval(0.25, self._update_status)

    # -- feeding ---------------------------------------------------------------------------
    def write_lines(self, lines: Sequence[str], partial: str | None = None) -> None:
        """Add a batch on the UI thread."""
        cleaned_partial = clean_line(partial) if partial is not None else None
        self.log_lines.append(clean_lines(lines), cleaned_partial)

    def post_lines(self, lines: Sequence[str], partial: str | None = None) -> None:
        """Add a batch from a worker thread: the cleaning happens here, off the UI loop."""
        cleaned_partial = clean_line(partial) if partial is not None else None
        self.post_message(self.LinesArrived(clean_lines(lines), cleaned_partial, cleaned=True))

    @on(LinesArrived)
    def _lines_arrived(self, message: LinesArrived) -> None:
        message.stop()
        if message.cleaned:
            self.log_lines.append(message.lines, message.partial)
        else:
            self.write_lines(message.lines, message.partial)

    def set_note(self, note: str) -> None:
        """A short text at the right of the status line: the job's state, a reconnection…
        (it may quote the host: control characters are shown escaped)."""
        self._note = terminal_safe(note)
        self._update_status()

    # -- following -------------------------------------------------------------------------
    @on(LogLines.FollowChanged)
    def _follow_changed(self, message: LogLines.FollowChanged) -> None:
        message.stop()
        badge = self.query_one("#log-new-lines", Static)
        shown = not message.following and message.new_lines > 0
        if shown:
            noun = "line" if message.new_lines == 1 else "lines"
            badge.update(f"+{message.new_lines:,} new {noun} (End to follow)")
        badge.set_class(shown, "-shown")
        self._update_status()

    def on_click(self, event: events.Click) -> None:
        if event.widget is not None and event.widget.id == "log-new-lines":
            self.action_follow()

    def action_follow(self) -> None:
        self.log_lines.action_follow()
        self.log_lines.focus()

    def action_toggle_wrap(self) -> None:
        lines = self.log_lines
        lines.set_wrap(not lines.wrap)
        self._update_status()

    # -- search ----------------------------------------------------------------------------
    def action_start_search(self) -> None:
        box = self.query_one("#log-search", Input)
        box.add_class("-shown")
        box.focus()

    def action_close_search(self) -> None:
        box = self.query_one("#log-search", Input)
        if not box.has_class("-shown"):
            raise SkipAction()  # Esc means "back" to whoever holds this view
        box.remove_class("-shown")
        self.log_lines.focus()

    def action_search_next(self) -> None:
        self._search(forward=True)

    def action_search_previous(self) -> None:
        self._search(forward=False)

    @on(Input.Submitted, "#log-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._search(forward=True)

    def _search(self, *, forward: bool) -> None:
        query = self.query_one("#log-search", Input).value
        if not query:
            return
        if not self.log_lines.search(query, forward=forward):
            self.notify(f"no line holds {query!r}", severity="warning", timeout=3, markup=False)
        self._update_status()

    # -- status ----------------------------------------------------------------------------
    def _update_status(self) -> None:
        lines = self.log_lines
        parts = [self._note] if self._note else []
        parts.append("following" if lines.following else "paused")
        held = f"{lines.line_count:,} lines"
        parts.append(f"last {held} (the rest on the host)" if lines.dropped else held)
        parts.append("wrap" if lines.wrap else "no wrap")
        text = " · ".join(parts)
        if text != self._status_text:
            self._status_text = text
            self.query_one("#log-status", Static).update(text)
