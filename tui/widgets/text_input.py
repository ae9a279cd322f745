"""An Input that does not blink when nobody watches (tests, snapshots, ``--headless``)."""

from __future__ import annotations

from textual.widgets import Input


class TextInput(Input):
    """A steady cursor in headless runs makes every screenshot of the same screen identical."""

    def on_mount(self) -> None:
        if self.app.is_headless:
            self.cursor_blink = False
