"""The command palette (ctrl+p): every action of the app and of the screen it was opened on.

A screen declares its actions (``ACTIONS``); the panes on it may bind more of their own (the
Transfers pane's cancel and resume, the log view's search). Those are listed too, named after
their pane and run on it, so that nothing a key does on the screen is missing from the palette.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen
from textual.widget import Widget

from tui.actions import APP_ACTIONS, ActionSpec

Target = App[Any] | Widget


def palette_entries(screen: Screen[Any], app: App[Any]) -> list[tuple[ActionSpec, Target]]:
    """The screen's actions, those its own widgets bind, then the app's; each with its target."""
    specs: tuple[ActionSpec, ...] = getattr(screen, "ACTIONS", ())
    entries: list[tuple[ActionSpec, Target]] = [(s, screen) for s in specs if s.in_palette]
    seen = {spec.id for spec in specs}
    for node in screen.walk_children(Widget):
        for spec in widget_actions(node):
            key = spec.id or f"{type(node).__name__}.{spec.action}"
            if key not in seen:
                seen.add(key)
                entries.append((spec, node))
    entries += [(spec, app) for spec in APP_ACTIONS if spec.in_palette]
    return entries


def widget_actions(node: Widget) -> list[ActionSpec]:
    """What gputui's own ``node`` binds, as specs titled after its pane (``Transfers: Cancel``).

    Textual's widgets (cursor keys, scrolling) are left out; so are bindings without a label.
    """
    declared: tuple[ActionSpec, ...] = getattr(node, "ACTIONS", ())
    specs = [spec for spec in declared if spec.in_palette]
    declared_ids = {spec.id for spec in specs}
    pane = pane_title(node)
    own = [c for c in type(node).__mro__ if c.__module__.startswith("tui.")]
    for binding in (b for c in own for b in c.__dict__.get("BINDINGS", ())):
        if not isinstance(binding, Binding) or not binding.description:
            continue
        key = binding.id or binding.action
        if key in declared_ids:
            continue  # declared as a spec, or bound again further down the class tree
        declared_ids.add(key)
        title = f"{pane}: {binding.description}" if pane else binding.description
        specs.append(
            ActionSpec(
                binding.id or "",
                binding.key,
                binding.action,
                binding.description,
                title,
                binding.tooltip or title,
                show=binding.show,
            )
        )
    return specs


def pane_title(node: Widget) -> str:
    """The title of the pane ``node`` sits in (or is), else nothing."""
    for ancestor in node.ancestors_with_self:
        if isinstance(ancestor, Screen):
            break
        title = getattr(ancestor, "TITLE", None)
        if isinstance(title, str) and title:
            return title
    return ""


class GputuiCommands(Provider):
    """Lists the same actions as the footer and the help screen, found by fuzzy search."""

    def _entries(self) -> list[tuple[ActionSpec, Target]]:
        return palette_entries(self.screen, self.app)

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
