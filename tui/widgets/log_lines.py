"""The rows of a job's log: a bounded buffer of cleaned lines, drawn on demand.

Lines arrive in batches and land in a bounded list; the widget draws only the rows on screen
through Textual's Line API and caches the strips it drew. It follows the tail until the person
scrolls up, then holds still and counts the new lines. New lines are drawn at most ``FRAME_RATE``
times a second, however fast they come.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.log_text import cells, highlighted
from tui.throttle import Throttle

#: Lines kept in memory; older ones are dropped from the view (the host keeps the whole log).
DEFAULT_MAX_LINES = 100_000
#: How often new lines are drawn at most, however fast they come.
FRAME_RATE = 30


class LogLines(ScrollView, can_focus=True):
    """The rows of the log, drawn on demand; a bounded buffer of cleaned lines."""

    COMPONENT_CLASSES = {"log-lines--match", "log-lines--current", "log-lines--partial"}


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
        self._throttle = Throttle(self.set_timer, 1 / FRAME_RATE, self._show_new_lines)
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
                width = max(map(cells, lines))
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
        self._throttle.request()

    def _show_new_lines(self) -> None:
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
        if self._throttle.pending:
            self._throttle.run()  # settle rows counted the old way first
        top_line, _ = self._line_at_row(round(self.scroll_y))
        self._wrap = wrap
        self._rebuild_rows()
        if not self.following:
            self._scroll_quietly(self._first_row_of(top_line))

    def _content_width(self) -> int:
        return max(1, self.scrollable_content_region.width or self.size.width or 80)

    def _rows_of(self, line: str) -> int:
        return max(1, -(-cells(line) // self._wrap_width))

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
            strip = Strip([Segment(line, style)], cells(line))
        self._strips[key] = strip
        return strip

    def _highlighted(self, line: str, absolute: int) -> list[Segment]:
        style, match_style, current_style, _ = self._style_set()
        current = self._match
        current_at = current[1] if current is not None and current[0] == absolute else None
        return highlighted(line, self._query, current_at, (style, match_style, current_style))
