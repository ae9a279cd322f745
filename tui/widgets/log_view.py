"""A log view that keeps up with a job printing tens of thousands of lines a second.

Lines arrive in batches (one message per batch, never one per line) into ``LogLines``, which
draws only the rows on screen. It follows the tail until the person scrolls up, then holds still
and counts "+N new lines" until they come back (End, ``f``, or a click on the count). The full
log stays on the host. Around the lines: the count, a search box and a status line.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual import events, on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Static

from tui.log_text import clean_line, clean_lines
from tui.text import terminal_safe
from tui.widgets.log_lines import DEFAULT_MAX_LINES, LogLines


class LogView(Vertical):
    """The log of one job: lines, a "+N new lines" badge, a search box and a status line."""


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
