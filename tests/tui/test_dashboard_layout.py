"""The host dashboard: its grid at different terminal widths, the keys that reach every pane, and
a command palette that lists every action of the screen."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static
from waiting import pilot_until

from tui.actions import APP_ACTIONS, DASHBOARD_PANES
from tui.app import GputuiApp
from tui.commands import palette_entries
from tui.screens.help import HelpScreen
from tui.screens.host_screen import HostScreen

pytestmark = pytest.mark.usefixtures("hosts_yaml")
PANES = [pane for pane, _, _ in DASHBOARD_PANES]


until = partial(pilot_until, timeout=10.0)


async def open_dashboard(pilot: Pilot[Any]) -> HostScreen:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.is_mounted)
    await pilot.pause()
    assert isinstance(app.screen, HostScreen)
    return app.screen


def drawn(widget: Widget) -> str:
    width, height = widget.size
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, width, height)))


def regions(screen: HostScreen) -> dict[str, Region]:
    return {pane: screen.query_one(f"#{pane}", Widget).region for pane in PANES}


def focused_pane(screen: HostScreen) -> str | None:
    return screen.pane_of(screen.focused)


async def test_the_grid_follows_the_terminal_width() -> None:
    app = GputuiApp(start_host="a100-box")
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await open_dashboard(pilot)

        # Wide: three columns; the log the whole height in the middle.
        assert screen.has_class("-wide")
        r = regions(screen)
        assert r["jobs"].x == r["transfers"].x == 0
        assert r["jobs"].right <= r["logs"].x < r["logs"].right <= r["metrics"].x
        assert r["metrics"].x == r["gpu"].x and r["gpu"].right == 200
        assert r["logs"].y == r["jobs"].y and r["logs"].bottom == r["transfers"].bottom
        assert r["metrics"].bottom == r["gpu"].y and r["transfers"].y == r["gpu"].y
        assert min(region.width for region in r.values()) >= 60

        # Medium: two columns, the log beside Jobs and Metrics, Transfers and GPU at the foot.
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert screen.has_class("-medium") and not screen.has_class("-wide")
        r = regions(screen)
        assert r["jobs"].x == r["metrics"].x == r["transfers"].x == 0
        assert r["logs"].x == r["gpu"].x == r["jobs"].right
        assert r["logs"].y == r["jobs"].y and r["logs"].bottom == r["metrics"].bottom
        assert r["transfers"].y == r["gpu"].y == r["metrics"].bottom
        assert r["metrics"].height > r["jobs"].height  # the plot gets the room
        assert r["gpu"].bottom == 39  # everything on screen, above the footer

        # Narrow: one column of panes at fixed heights, in focus order, scrolling.
        await pilot.resize_terminal(80, 30)
        await pilot.pause()
        assert screen.has_class("-narrow")
        r = regions(screen)
        assert {region.x for region in r.values()} == {0}
        tops = [r[pane].y for pane in PANES]
        assert tops == sorted(tops) and len(set(tops)) == len(PANES)
        assert min(region.height for region in r.values()) >= 8
        panes = screen.query_one("#panes", Widget)
        assert panes.max_scroll_y > 0


async def test_digits_reach_every_pane_and_tab_goes_round() -> None:
    app = GputuiApp(start_host="a100-box")
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await open_dashboard(pilot)
        for pane, key, _ in reversed(DASHBOARD_PANES):
            await pilot.press(key)
            assert focused_pane(screen) == pane, key

        await pilot.press("1")
        visited = []
        for _ in PANES:
            await pilot.press("tab")
            visited.append(focused_pane(screen))
        assert visited == [*PANES[1:], PANES[0]]
        await pilot.press("shift+tab", "shift+tab")
        assert focused_pane(screen) == PANES[-2]


async def test_a_pane_out_of_sight_scrolls_into_view_on_its_key() -> None:
    app = GputuiApp(start_host="a100-box")
    async with app.run_test(size=(80, 30)) as pilot:
        screen = await open_dashboard(pilot)
        panes = screen.query_one("#panes", Widget)
        gpu = screen.query_one("#gpu", Widget)
        assert not panes.region.contains_region(gpu.region)
        await pilot.press("5")
        await pilot.pause(0.2)
        assert focused_pane(screen) == "gpu"
        assert panes.scroll_y > 0 and panes.region.contains_region(gpu.region)
        await pilot.press("1")
        await pilot.pause(0.2)
        jobs = screen.query_one("#jobs", Widget)
        assert focused_pane(screen) == "jobs" and panes.region.contains_region(jobs.region)


async def test_the_palette_lists_every_action_of_the_screen_and_runs_them() -> None:
    app = GputuiApp(start_host="a100-box")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await open_dashboard(pilot)
        entries = palette_entries(screen, app)
        ids = [spec.id for spec, _ in entries if spec.id]
        assert len(ids) == len(set(ids))
        wanted = {spec.id for spec in HostScreen.ACTIONS if spec.in_palette}
        wanted |= {spec.id for spec in APP_ACTIONS if spec.in_palette}
        wanted |= {f"host.focus-{pane}" for pane in PANES}
        # The panes' own keys, run on the pane that binds them.
        wanted |= {"transfers.cancel", "transfers.resume", "jobs.refresh"}
        assert wanted <= set(ids)
        targets = {spec.id: target for spec, target in entries}
        assert targets["transfers.cancel"] is screen.query_one("#transfers")
        titles = {spec.title for spec, _ in entries}
        assert {"Transfers: Cancel", "Logs: Search", "Go to Metrics"} <= titles

        await pilot.press("1")
        await pilot.press("ctrl+p")
        await pilot.press(*"go to metrics")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen and focused_pane(screen) == "metrics")


async def test_help_lists_the_pane_keys() -> None:
    app = GputuiApp(start_host="a100-box")
    async with app.run_test(size=(120, 50)) as pilot:
        await open_dashboard(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        text = "\n".join(drawn(static) for static in app.screen.query(Static))
        for _, _, title in DASHBOARD_PANES:
            assert f"Move the focus to the {title} pane" in text
        assert "Move the focus to the next pane" in text
        # The keys the panes bind themselves are listed under their pane.
        assert "In Transfers" in text and "In Logs" in text
        assert "Logs: Search" in text
