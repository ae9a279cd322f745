"""Launch a job: the command (a shell command line, exactly as typed) and an optional name."""

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


class NewJobScreen(ModalScreen[tuple[str, str] | None]):
    """Returns ``(command, name)``, or None when cancelled."""

    CSS_PATH: ClassVar[list[str | PurePath]] = ["../styles/new_job.tcss"]
    BINDINGS: ClassVar = [
        Binding("escape", "cancel", "Cancel", id="new-job.cancel"),
    ]

    def __init__(self, host: HostProfile) -> None:
        super().__init__()
        self.host = host

    def compose(self) -> ComposeResult:
        with Vertical(id="new-job", classes="dialog"):
            yield Label(f"New job on {self.host.name}", id="new-job-title")
            yield Static(
                f"Runs in {self.host.workdir}"
                + (f" after `{self.host.env_activation}`" if self.host.env_activation else "")
                + "; it keeps running when you disconnect.",
                id="new-job-where",
                markup=False,
            )
            yield Label("Command")
            yield Input(placeholder="python train.py --config configs/dev.yaml", id="job-command")
            yield Label("Name (optional)")
            yield Input(placeholder="what to call it in the list", id="job-name")
            yield Static("", id="new-job-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Launch", variant="primary", id="launch")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#job-command", Input).focus()

    @on(Input.Submitted, "#job-command")
    def _command_entered(self) -> None:
        self.query_one("#job-name", Input).focus()

    @on(Input.Submitted, "#job-name")
    @on(Button.Pressed, "#launch")
    def _launch(self) -> None:
        command = self.query_one("#job-command", Input).value
        if not command.strip():
            self.query_one("#new-job-error", Static).update("Type the command to run.")
            self.query_one("#job-command", Input).focus()
            return
        self.dismiss((command, self.query_one("#job-name", Input).value.strip()))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
