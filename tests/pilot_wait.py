"""Waiting in Pilot tests for what the app shows."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.css.query import NoMatches
from textual.pilot import Pilot


async def until(pilot: Pilot[Any], check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait for ``check``; a screen still composing (its panes not there yet) counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except NoMatches:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)
