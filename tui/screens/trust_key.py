"""Trust a host key, or be told loudly that it changed.

An unknown key is shown with its SHA256 fingerprint so the person can compare it with what the
provider's console shows before trusting it. A key that came in a host certificate is shown with
the fingerprint of the CA that signed it; trusting stores the host's own key, never the CA. A
changed (or revoked) key gets no trust button at all: the only way past it is to remove the old
key by hand, after finding out why it changed.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from transfer.hosts import HostProfile
from transfer.paths import known_hosts_file


class KeyFacts(Protocol):
    """What ``transfer.hostkeys.HostKeyInfo`` carries."""

    @property
    def host(self) -> str: ...
    @property
    def key_type(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def ca_key_type(self) -> str: ...
    @property
    def ca_fingerprint(self) -> str: ...


class TrustKeyScreen(ModalScreen[bool]):
    """Returns True when the person trusts the key; a changed key can only be closed."""

    BINDINGS: ClassVar = [Binding("escape", "close", "Cancel", id="trust-key.cancel")]

    def __init__(self, host: HostProfile, info: KeyFacts, *, changed: bool = False) -> None:
        super().__init__()
        self.host = host
        self.info = info
        self.changed = changed

    def who(self) -> str:
        """The machine whose key this is: the host, or a jump host on the way to it."""
        host = self.host
        if self.info.host and self.info.host != host.name:
            return f"The jump host [b]{escape(self.info.host)}[/b] (on the way to {host.name})"
        return f"[b]{escape(host.name)}[/b] ({escape(host.address)})"

    def compose(self) -> ComposeResult:
        info = self.info
        classes = "dialog key-changed" if self.changed else "dialog"
        with Vertical(id="trust-key", classes=classes):
            if self.changed:
                yield Label("WARNING: HOST KEY CHANGED", id="trust-key-title")
                yield Static(
                    f"{self.who()} now presents a "
                    "different key from the one you trusted. Someone may be intercepting the "
                    "connection, or the machine was rebuilt. gputui refuses to connect.",
                    classes="trust-key-text",
                )
            else:
                yield Label("Unknown host key", id="trust-key-title")
                yield Static(
                    f"{self.who()} presented a key "
                    "that nobody has trusted yet. Compare the fingerprint with the one your "
                    "provider shows before you trust it.",
                    classes="trust-key-text",
                )
            yield Static(escape(info.key_type), id="trust-key-type")
            yield Static(escape(info.fingerprint), id="trust-key-fingerprint")
            if info.ca_fingerprint:
                stored = "" if self.changed else " Trusting stores the host's key, not the CA."
                yield Static(
                    f"In a certificate signed by the CA {escape(info.ca_key_type)} "
                    f"{escape(info.ca_fingerprint)}, which is not trusted here.{stored}",
                    id="trust-key-ca",
                    classes="trust-key-text",
                )
            if self.changed:
                yield Static(
                    "If you know why it changed, remove the old key from "
                    f"{escape(str(known_hosts_file()))} and test the host again.",
                    classes="trust-key-text",
                )
            with Horizontal(classes="dialog-buttons"):
                if self.changed:
                    yield Button("Close", variant="error", id="trust-close")
                else:
                    yield Button("Trust", variant="warning", id="trust-yes")
                    yield Button("Cancel", id="trust-close")

    def on_mount(self) -> None:
        self.query_one("#trust-close", Button).focus()

    def action_close(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#trust-yes")
    def _trust(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#trust-close")
    def _close(self) -> None:
        self.dismiss(False)
