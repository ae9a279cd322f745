"""Every action a person can take, declared once.

Bindings (with ids, so a keymap can remap them), the footer, the help screen and the command
palette are all built from these specs, so a key shown anywhere is a key that works.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class ActionSpec:
    """One action: its key, its footer label, its palette title and a line of help."""

    id: str
    key: str
    action: str
    label: str
    title: str
    help: str
    show: bool = True
    in_palette: bool = True
    priority: bool = False

    def binding(self) -> Binding:
        return Binding(
            self.key,
            self.action,
            self.label,
            show=self.show,
            priority=self.priority,
            tooltip=self.help,
            id=self.id,
        )


def bindings(specs: tuple[ActionSpec, ...]) -> list[BindingType]:
    return [spec.binding() for spec in specs]


def _hidden(id: str, key: str, action: str, label: str) -> ActionSpec:
    """A movement key: it works and help lists it, but the footer and palette leave it out."""
    return ActionSpec(id, key, action, label, label, label, show=False, in_palette=False)


APP_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("app.quit", "q", "quit", "Quit", "Quit", "Leave gputui"),
    ActionSpec("app.quit-ctrl", "ctrl+q", "quit", "Quit", "Quit", "Leave gputui, even from a "
               "text field", show=False, in_palette=False, priority=True),
    ActionSpec("app.help", "question_mark", "help", "Help", "Help",
               "Show the keys of this screen"),
    ActionSpec("app.palette", "ctrl+p", "command_palette", "Commands", "Commands",
               "Search every action by name", show=False, in_palette=False),
)

HOST_LIST_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("host-list.open", "enter", "open_host", "Open", "Open host",
               "Open the dashboard of the highlighted host", priority=True),
    ActionSpec("host-list.filter", "slash", "focus_filter", "Filter", "Filter hosts",
               "Fuzzy filter on name, address, tags and provider (or just start typing)"),
    ActionSpec("host-list.add", "a", "add_host", "Add", "Add host", "Add a host profile"),
    ActionSpec("host-list.edit", "e", "edit_host", "Edit", "Edit host",
               "Edit the highlighted host profile"),
    ActionSpec("host-list.delete", "D", "delete_host", "Delete", "Delete host",
               "Delete the highlighted host profile (asks first)"),
    ActionSpec("host-list.test", "t", "test_host", "Test", "Test host",
               "Connect to the highlighted host and probe latency, GPUs and tools"),
    ActionSpec("host-list.clear-filter", "escape", "clear_filter", "Clear filter",
               "Clear filter", "Empty the filter and go back to the list", show=False),
    _hidden("host-list.down", "j", "cursor_down", "Move down"),
    _hidden("host-list.up", "k", "cursor_up", "Move up"),
    _hidden("host-list.down-arrow", "down", "cursor_down", "Move down"),
    _hidden("host-list.up-arrow", "up", "cursor_up", "Move up"),
)

HOST_SCREEN_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("host.back", "escape", "back", "Back", "Back to hosts", "Back to the host list"),
    ActionSpec("host.test", "t", "test_host", "Test", "Test this host",
               "Connect to this host and probe it again"),
)
