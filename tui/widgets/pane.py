"""A titled pane of the host dashboard; the live panes build on it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class Pane(Vertical):
    """A bordered box with a title and, until it has content, a line saying what will be there."""

    TITLE: ClassVar[str] = ""
    PLACEHOLDER: ClassVar[str] = ""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = self.TITLE

    def compose(self) -> ComposeResult:
        yield Static(self.PLACEHOLDER, classes="pane-placeholder")
