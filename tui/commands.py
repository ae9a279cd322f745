"""The command palette (ctrl+p): every action of the app and of the screen it was opened on."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from tui.actions import APP_ACTIONS, ActionSpec

Target = App[Any] | Screen[Any]


class GputuiCommands(Provider):
    """Lists the same actions as the footer and the help screen, found by fuzzy search."""

    def _entries(self) -> list[tuple[ActionSpec, Target]]:
        screen_actions: tuple[ActionSpec, ...] = getattr(self.screen, "ACTIONS", ())
        entries: list[tuple[ActionSpec, Target]] = [
            (spec, self.screen) for spec in screen_actions if spec.in_palette
        ]
        entries += [(spec, self.app) for spec in APP_ACTIONS if spec.in_palette]
        return entries

    @staticmethod
    def _runner(spec: ActionSpec, target: Target) -> Callable[[], object]:
        return partial(target.run_action, spec.action)

    async def discover(self) -> Hits:
        for spec, target in self._entries():
            yield DiscoveryHit(spec.title, self._runner(spec, target), help=spec.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for spec, target in self._entries():
            score = max(matcher.match(spec.title), matcher.match(spec.help) * 0.8)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(spec.title),
                    self._runner(spec, target),
                    text=spec.title,
                    help=spec.help,
                )
