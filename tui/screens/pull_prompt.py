"""Which path to pull from the host: typed, relative to its workdir unless absolute or ``~``."""

from __future__ import annotations

from pathlib import PurePath
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from transfer.hosts import HostProfile
from tui.widgets.text_input import TextInput


class PullPromptScreen(ModalScreen[str | None]):
    """Returns the remote path, or None when cancelled. ``default`` pre-fills the path (a
    job's output folder, say), ready to be confirmed with Enter or edited."""

    CSS_PATH: ClassVar[list[str | PurePath]] = ["../styles/transfers_pane.tcss"]
    BINDINGS: ClassVar = [Binding("escape", "cancel", "Cancel", id="pull.cancel")]

    def __init__(self, host: HostProfile, default: str | None = None) -> None:
        super().__init__()
        self.host = host
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="pull-prompt", classes="dialog"):
            yield Label(f"Pull from {self.host.name}", id="pull-title")
            yield Static(
                f"A file or folder on the host; a relative path is inside {self.host.workdir}. "
                "It lands in this folder under its own name.",
                id="pull-where",
                markup=False,
            )
            # The cursor lands after a default, so a sub-folder is typed straight on.
            yield TextInput(
                self.default or "",
                placeholder="checkpoints/run-1",
                select_on_focus=False,
                id="pull-path",
            )
            yield Static("", id="pull-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Pull", variant="primary", id="pull-go")
                yield Button("Cancel", id="pull-cancel")

    def on_mount(self) -> None:
        self.query_one("#pull-path", Input).focus()

    @on(Input.Submitted, "#pull-path")
    @on(Button.Pressed, "#pull-go")
    def _go(self) -> None:
        path = self.query_one("#pull-path", Input).value.strip()
        if not path:
            self.query_one("#pull-error", Static).update("Type the path to pull.")
            return
        self.dismiss(path)

    @on(Button.Pressed, "#pull-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
