"""The keys of the screen underneath, and the ones that work everywhere."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Label, Static

from tui.actions import APP_ACTIONS, ActionSpec
from tui.commands import pane_title, widget_actions


class HelpScreen(ModalScreen[None]):
    """Built from the same action specs as the bindings, so it cannot drift from them."""

    BINDINGS: ClassVar = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        screen_actions: tuple[ActionSpec, ...] = getattr(self.under, "ACTIONS", ())
        with Vertical(id="help", classes="dialog"):
            yield Label("Keys", id="help-title")
            with VerticalScroll():
                if screen_actions:
                    yield Static(self._table("On this screen", screen_actions))
                for pane, specs in self._pane_actions().items():
                    yield Static(self._table(f"In {pane}", specs))
                yield Static(self._table("Everywhere", APP_ACTIONS))
            yield Static("Esc, ? or q closes this help.", id="help-footer")

    def _pane_actions(self) -> dict[str, tuple[ActionSpec, ...]]:
        """The keys the panes of the screen bind themselves, by pane (Transfers: c, r…)."""
        screen_keys = {spec.key for spec in getattr(self.under, "ACTIONS", ())}
        by_pane: dict[str, tuple[ActionSpec, ...]] = {}
        for node in self.under.walk_children(Widget):
            specs = tuple(s for s in widget_actions(node) if s.key not in screen_keys)
            if specs:
                pane = pane_title(node) or type(node).__name__
                by_pane[pane] = by_pane.get(pane, ()) + specs
        return by_pane

    def _table(self, caption: str, specs: tuple[ActionSpec, ...]) -> Table:
        table = Table(title=caption, title_justify="left", box=None, show_header=False,
                      padding=(0, 2, 0, 0), expand=True)
        table.add_column("key", style="bold", no_wrap=True, width=10)
        table.add_column("action", ratio=1)
        keys_by_action: dict[str, list[str]] = {}
        helps: dict[str, str] = {}
        for spec in specs:
            keys_by_action.setdefault(spec.action, []).append(
                self.app.get_key_display(spec.binding())
            )
            helps.setdefault(spec.action, spec.help)
        for action, keys in keys_by_action.items():
            table.add_row(" ".join(keys), helps[action])
        return table
