"""Add or edit a host profile; the HostProfile model validates, errors appear under each field."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import ValidationError
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from transfer.hosts import HostProfile
from tui.widgets.text_input import TextInput

# (field, label, placeholder): every field of HostProfile that a person sets.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("name", "Name", "a100-box"),
    ("hostname", "Host", "203.0.113.7 or gpu.example.com"),
    ("user", "User", "login name (empty: ssh config or yours)"),
    ("port", "Port", "22"),
    ("identity_file", "Key file", "~/.ssh/id_ed25519 (empty: agent and ssh defaults)"),
    ("proxy_jump", "Jump host", "bastion or user@bastion:22"),
    ("workdir", "Remote workdir", "~/gputui"),
    ("env_activation", "Env activation", "conda activate train"),
    ("setup_command", "Setup command", "pip install -r requirements.txt"),
    ("provider", "Provider", "lambda, runpod, vast, home…"),
    ("rate_usd_per_hour", "Rate ($/h)", "1.29"),
    ("stop_command", "Stop command", "sudo shutdown -h now"),
    ("tags", "Tags", "a100, spot (comma or space separated)"),
)
# What the built-in local host keeps fixed: it is this machine.
LOCAL_FIXED = frozenset({"name", "hostname", "user", "port", "identity_file", "proxy_jump"})


class HostFormScreen(ModalScreen[HostProfile | None]):
    """Returns the validated profile, or None when cancelled."""

    BINDINGS: ClassVar = [
        Binding("escape", "cancel", "Cancel", id="host-form.cancel"),
        Binding("ctrl+s", "save", "Save", id="host-form.save"),
    ]

    def __init__(self, existing: HostProfile | None, taken_names: set[str]) -> None:
        super().__init__()
        self.existing = existing
        self.taken_names = taken_names

    def compose(self) -> ComposeResult:
        title = f"Edit host {self.existing.name}" if self.existing else "Add a host"
        with Vertical(id="host-form"):
            yield Label(title, id="host-form-title")
            with VerticalScroll(id="host-form-fields"):
                for field, label, placeholder in FIELDS:
                    with Horizontal(classes="form-row"):
                        yield Label(label, classes="form-label")
                        yield TextInput(
                            value=self._initial(field),
                            placeholder=placeholder,
                            id=f"field-{field}",
                            compact=True,
                            disabled=self._is_fixed(field),
                        )
                    yield Static(id=f"error-{field}", classes="field-error")
            with Horizontal(id="host-form-buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        first = next(f for f, _l, _p in FIELDS if not self._is_fixed(f))
        self.query_one(f"#field-{first}", Input).focus()

    def _is_fixed(self, field: str) -> bool:
        return self.existing is not None and self.existing.is_local and field in LOCAL_FIXED

    def _initial(self, field: str) -> str:
        if self.existing is None:
            return ""
        value = getattr(self.existing, field)
        if field == "tags":
            return ", ".join(value)
        if field == "port":
            return "" if value == 22 else str(value)
        if field == "rate_usd_per_hour":
            return "" if not value else f"{value:g}"
        return "" if value is None else str(value)

    def collect(self) -> dict[str, Any]:
        """The form as model input: empty fields are left out so the model's defaults apply."""
        data: dict[str, Any] = {}
        for field, _label, _placeholder in FIELDS:
            raw = self.query_one(f"#field-{field}", Input).value.strip()
            if field == "tags":
                data["tags"] = [tag for tag in re.split(r"[,\s]+", raw) if tag]
            elif raw:
                data[field] = raw
        data["transport"] = self.existing.transport if self.existing else "ssh"
        return data

    def validate_form(self) -> tuple[HostProfile | None, dict[str, str]]:
        data = self.collect()
        errors: dict[str, str] = {}
        if data["transport"] == "ssh" and not data.get("hostname"):
            errors["hostname"] = "required: the address to connect to"
        if "name" not in data:
            errors["name"] = "required"
        elif data["name"] in self.taken_names:
            errors["name"] = f"a host named {data['name']!r} already exists"
        try:
            profile = HostProfile.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else "name"
                errors.setdefault(field, _plain(error["msg"]))
            return None, errors
        return (None if errors else profile), errors

    def show_errors(self, errors: dict[str, str]) -> None:
        for field, _label, _placeholder in FIELDS:
            line = self.query_one(f"#error-{field}", Static)
            line.update(errors.get(field, ""))
            line.set_class(field in errors, "visible")
            self.query_one(f"#field-{field}", Input).set_class(field in errors, "invalid")
        first_bad = next((f for f, _l, _p in FIELDS if f in errors), None)
        if first_bad:
            self.query_one(f"#field-{first_bad}", Input).focus()

    def action_save(self) -> None:
        profile, errors = self.validate_form()
        self.show_errors(errors)
        if profile is not None:
            self.dismiss(profile)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()


def _plain(message: str) -> str:
    """Pydantic's ``Value error, x`` reads better as ``x``."""
    return message.removeprefix("Value error, ")
