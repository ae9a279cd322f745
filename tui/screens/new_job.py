"""Launch a job: a training config of the project (its trainer command filled in), or any command.

The configs are the project's own (``configs/*.yaml`` of the folder that ``p`` pushes), so the
path in the command is the one the pushed copy has on the host. Choosing one fills the command
and the name; both stay editable (``--set train.max_steps=50`` and the like).
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from transfer.hosts import HostProfile
from tui.training_configs import CONFIG_DIR, TrainingConfig, find_training_configs

FREE_COMMAND = "free-command"


class NewJobScreen(ModalScreen[tuple[str, str] | None]):
    """Returns ``(command, name)``, or None when cancelled."""

    CSS_PATH: ClassVar[list[str | PurePath]] = ["../styles/new_job.tcss"]
    BINDINGS: ClassVar = [
        Binding("escape", "cancel", "Cancel", id="new-job.cancel"),
    ]
    AUTO_FOCUS = "#job-command"  # the config list, once it is filled, takes the focus over

    def __init__(self, host: HostProfile, project: Path | None = None) -> None:
        super().__init__()
        self.host = host
        self.project = project
        self.configs: list[TrainingConfig] = []

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
            yield Label("Training config", id="job-configs-label")
            yield OptionList(id="job-configs")
            yield Label("Command")
            yield Input(placeholder="python train.py --config configs/dev.yaml", id="job-command")
            yield Label("Name (optional)")
            yield Input(placeholder="what to call it in the list", id="job-name")
            yield Static("", id="new-job-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Launch", variant="primary", id="launch")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        if self.project is not None:
            self._find_configs(self.project)

    @work(thread=True, exclusive=True, description="Looking for training configs")
    def _find_configs(self, project: Path) -> None:
        configs = find_training_configs(project)
        self.app.call_from_thread(self._show_configs, configs)

    def _show_configs(self, configs: list[TrainingConfig]) -> None:
        self.configs = configs
        if not configs:
            return
        options = self.query_one("#job-configs", OptionList)
        options.clear_options()
        width = max(len(config.path) for config in configs) + 2
        for index, config in enumerate(configs):
            prompt = Text(config.path.ljust(width), style="bold")
            prompt.append(config.summary, style="dim")
            options.add_option(Option(prompt, id=str(index)))
        options.add_option(Option(Text("Any command: type it below", style="italic"),
                                  id=FREE_COMMAND))
        options.highlighted = 0
        self.query_one("#new-job").add_class("-has-configs")
        command = self.query_one("#job-command", Input)
        if self.focused in (None, command) and not command.value:  # nothing typed yet
            options.focus()

    @on(OptionList.OptionSelected, "#job-configs")
    def _config_chosen(self, event: OptionList.OptionSelected) -> None:
        command = self.query_one("#job-command", Input)
        name = self.query_one("#job-name", Input)
        if event.option_id == FREE_COMMAND or event.option_id is None:
            command.value = name.value = ""
            command.focus()
            return
        config = self.configs[int(event.option_id)]
        command.value = config.command
        name.value = config.job_name
        self.query_one("#new-job-error", Static).update("")
        self.query_one("#launch", Button).focus()

    @on(Input.Submitted, "#job-command")
    def _command_entered(self) -> None:
        self.query_one("#job-name", Input).focus()

    @on(Input.Submitted, "#job-name")
    @on(Button.Pressed, "#launch")
    def _launch(self) -> None:
        command = self.query_one("#job-command", Input).value
        if not command.strip():
            hint = f" or choose a config from {CONFIG_DIR}/" if self.configs else ""
            self.query_one("#new-job-error", Static).update(f"Type the command to run{hint}.")
            self.query_one("#job-command", Input).focus()
            return
        self.dismiss((command, self.query_one("#job-name", Input).value.strip()))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
