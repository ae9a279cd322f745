"""The log view driven with Pilot: follow, pause on scroll, "+N new lines", search, wrap, bounds."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input, Static

from tui.log_text import clean_line, clean_lines
from tui.widgets.log_lines import FRAME_RATE, LogLines
from tui.widgets.log_view import LogView

SIZE = (80, 20)
SnapCompare = Callable[..., bool]


STYLES = Path(__file__).resolve().parents[2] / "tui" / "styles"


class ViewApp(App[None]):
    CSS_PATH: ClassVar = [STYLES / "log_lines.tcss", STYLES / "log_view.tcss"]

    def __init__(self, max_lines: int = 10_000) -> None:
        super().__init__()
        self.max_lines = max_lines

    def compose(self) -> ComposeResult:
        yield LogView(max_lines=self.max_lines)

    def on_mount(self) -> None:
        self.view.query_one("#log-search", Input).cursor_blink = False  # stable snapshots
        self.view.log_lines.focus()

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    @property
    def lines(self) -> LogLines:
        return self.view.log_lines


async def drawn(pilot: Pilot[None]) -> None:
    """Wait until lines just written are on screen (new lines are drawn at most FRAME_RATE/s)."""
    await pilot.pause(1 / FRAME_RATE + 0.02)


def numbered(start: int, stop: int) -> list[str]:
    return [f"line {i}" for i in range(start, stop)]


def shown_rows(lines: LogLines) -> list[str]:
    """The text of every row on screen, as drawn."""
    return [
        lines.render_line(y).text.rstrip() for y in range(lines.scrollable_content_region.height)
    ]


def badge(app: ViewApp) -> Static:
    return app.view.query_one("#log-new-lines", Static)


async def test_follows_the_tail_then_pauses_when_scrolled_up() -> None:
    app = ViewApp()
    async with app.run_test(size=SIZE) as pilot:
        lines = app.lines
        app.view.write_lines(numbered(0, 200))
        await drawn(pilot)
        assert lines.following and lines.scroll_y == lines.max_scroll_y > 0
        assert shown_rows(lines)[-1] == "line 199"

        await pilot.press("up", "up")
        assert not lines.following
        paused_at = lines.scroll_y
        app.view.write_lines(numbered(200, 250))
        await drawn(pilot)
        assert lines.scroll_y == paused_at  # the view holds still
        assert lines.new_lines == 50
        assert badge(app).display and "+50 new lines" in str(badge(app).render())

        app.view.write_lines(numbered(250, 251))
        await drawn(pilot)
        assert "+51 new lines" in str(badge(app).render())

        await pilot.press("end")
        await pilot.pause()
        assert lines.following and lines.new_lines == 0 and not badge(app).display
        assert shown_rows(lines)[-1] == "line 250"
        app.view.write_lines(numbered(251, 260))
        await drawn(pilot)
        assert shown_rows(lines)[-1] == "line 259"


async def test_scrolling_back_to_the_end_resumes_following() -> None:
    app = ViewApp()
    async with app.run_test(size=SIZE) as pilot:
        lines = app.lines
        app.view.write_lines(numbered(0, 100))
        await drawn(pilot)
        await pilot.press("pageup")
        app.view.write_lines(numbered(100, 103))
        await drawn(pilot)
        assert not lines.following and lines.new_lines == 3
        await pilot.press("pagedown", "pagedown", "pagedown")
        await pilot.pause()
        assert lines.following and lines.new_lines == 0
        await pilot.click("#log-new-lines")  # hidden now: clicking it is harmless
        await pilot.press("home")
        app.view.write_lines(numbered(103, 110))
        await drawn(pilot)
        assert lines.scroll_y == 0 and lines.new_lines == 7
        await pilot.click("#log-new-lines")
        await pilot.pause()
        assert lines.following and shown_rows(lines)[-1] == "line 109"


async def test_search_finds_next_and_previous_matches() -> None:
    app = ViewApp()
    async with app.run_test(size=SIZE) as pilot:
        lines = app.lines
        app.view.write_lines(
            [
                f"step {i} loss {1 / (i + 1):.3f}" + (" CHECKPOINT saved" if i % 50 == 7 else "")
                for i in range(300)
            ]
        )
        await drawn(pilot)
        await pilot.press("slash", *"checkpoint", "enter")
        await pilot.pause()
        assert not lines.following  # a search stops following so the match stays put
        first = lines.match
        assert first is not None and first[0] in (7, 57, 107, 157, 207, 257)
        assert any("CHECKPOINT" in row for row in shown_rows(lines))
        await pilot.press("escape")  # back to the lines; n and N keep searching
        await pilot.press("n")
        second = lines.match
        assert second is not None and second[0] == (first[0] + 50) % 300
        await pilot.press("N", "N")
        third = lines.match
        assert third is not None and third[0] == (first[0] - 50) % 300

        # Smart case: a capital in the query makes it exact.
        await pilot.press("slash")
        search = app.view.query_one("#log-search", Input)
        search.value = "Checkpoint"
        await pilot.press("enter")
        await pilot.pause()
        assert lines.match is None


async def test_search_highlights_the_match_on_screen() -> None:
    app = ViewApp()
    async with app.run_test(size=SIZE) as pilot:
        app.view.write_lines(["alpha", "beta gamma beta", "delta"])
        await drawn(pilot)
        await pilot.press("slash", *"beta", "enter")
        await pilot.pause()
        strip = app.lines.render_line(1)
        styled = [(seg.text, seg.style) for seg in strip if seg.text.strip()]
        texts = [text for text, _ in styled]
        assert texts == ["beta", " gamma ", "beta"]
        assert styled[0][1] != styled[1][1] and styled[2][1] != styled[1][1]
        assert styled[0][1] != styled[2][1]  # the current match differs from the others


async def test_wrap_toggle_folds_long_lines() -> None:
    app = ViewApp()
    async with app.run_test(size=SIZE) as pilot:
        lines = app.lines
        long_line = "".join(str(i % 10) for i in range(200))
        app.view.write_lines(["short", long_line, "after"])
        await drawn(pilot)
        assert lines.virtual_size.height == 3 and lines.virtual_size.width == 200
        await pilot.press("w")
        await pilot.pause()
        width = lines.scrollable_content_region.width
        assert lines.wrap and lines.virtual_size.height == 2 + -(-200 // width)
        rows = shown_rows(lines)
        assert rows[0] == "short" and rows[1] == long_line[:width]
        assert rows[2] == long_line[width : 2 * width]
        assert "after" in rows
        await pilot.press("w")
        await pilot.pause()
        assert not lines.wrap and lines.virtual_size.height == 3


async def test_the_buffer_stays_bounded() -> None:
    app = ViewApp(max_lines=100)
    async with app.run_test(size=SIZE) as pilot:
        lines = app.lines
        app.view.write_lines(numbered(0, 250))
        await drawn(pilot)
        assert lines.line_count == 100 and lines.dropped == 150
        assert lines.lines[0] == "line 150" and shown_rows(lines)[-1] == "line 249"

        await pilot.press("home", "down", "down", "down")  # paused, reading line 153 at the top
        assert shown_rows(lines)[0] == "line 153"
        app.view.write_lines(numbered(250, 260))
        await drawn(pilot)
        assert shown_rows(lines)[0] == "line 160"  # what was read dropped out; no jump elsewhere
        app.view.write_lines(numbered(260, 265))
        await drawn(pilot)
        assert shown_rows(lines)[0] == "line 165"


async def test_the_unfinished_progress_line_shows_last_and_is_replaced() -> None:
    app = ViewApp()
    async with app.run_test(size=SIZE) as pilot:
        app.view.write_lines(["epoch 1"], partial="45%|████▌     |")
        await drawn(pilot)
        assert shown_rows(app.lines)[:2] == ["epoch 1", "45%|████▌     |"]
        app.view.write_lines(["100%|██████████|"], partial=None)
        await drawn(pilot)
        assert shown_rows(app.lines)[:3] == ["epoch 1", "100%|██████████|", ""]


async def test_batches_posted_from_a_thread_arrive_in_order() -> None:
    app = ViewApp()
    async with app.run_test(size=SIZE) as pilot:

        def feed() -> None:
            for start in range(0, 5000, 500):
                app.view.post_lines(numbered(start, start + 500))

        thread = threading.Thread(target=feed)
        thread.start()
        thread.join()
        for _ in range(50):
            await pilot.pause(0.02)
            if app.lines.line_count == 5000:
                break
        assert list(app.lines.lines) == numbered(0, 5000)


def test_cleaning_removes_escapes_and_control_characters() -> None:
    assert clean_line("\x1b[31mred\x1b[0m plain") == "red plain"
    assert clean_line("a\tb") == "a       b"
    assert (
        clean_line("bell\x07 and \x1b]0;title\x07done") == "bell\N{REPLACEMENT CHARACTER} and done"
    )
    batch = ["plain", "also plain"]
    assert clean_lines(batch) == batch
    assert clean_lines(["x", "\x1b[1mbold\x1b[0m"]) == ["x", "bold"]


def test_cleaning_removes_the_one_character_c1_escapes_too() -> None:
    # CSI (U+009B) and OSC (U+009D) act like ESC [ and ESC ] on many terminals.
    assert clean_line("a\x9b31mred\x9b0m b") == "ared b"
    assert clean_line("x\x9d52;c;cHduZWQ=\x07y") == "xy"
    assert clean_line("x\x9d0;title\x9cy") == "xy"
    assert clean_line("next\x85line") == "next\N{REPLACEMENT CHARACTER}line"
    assert clean_lines(["plain", "\x9b2Jcleared"]) == ["plain", "cleared"]


async def _paused_with_search(pilot: Pilot[None]) -> None:
    app: ViewApp = pilot.app  # type: ignore[assignment]
    app.view.write_lines(
        [f"{i:04d} epoch 3 | step {i} | loss {2 / (i + 2):.4f}" for i in range(120)]
    )
    await drawn(pilot)
    await pilot.press("pageup")
    app.view.write_lines([f"{i:04d} epoch 4 | step {i}" for i in range(120, 132)])
    await drawn(pilot)
    await pilot.press("slash", *"step 9", "enter")
    await pilot.pause()


def test_snapshot_paused_with_new_lines_and_a_match(snap_compare: SnapCompare) -> None:
    assert snap_compare(ViewApp(), terminal_size=SIZE, run_before=_paused_with_search)
