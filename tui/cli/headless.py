"""``gputui --headless``: run the app without a terminal, play keys, write what the screen shows.

Used by scripts and tests to see the app as a person would, and to check that it starts at all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from transfer.errors import GputuiError

if TYPE_CHECKING:
    from textual.app import App
    from textual.pilot import Pilot

SIZE_PATTERN = re.compile(r"^\s*(\d{2,4})\s*[xX]\s*(\d{1,4})\s*$")
SETTLE_TIMEOUT_S = 15.0
LIVE_GROUP_PREFIX = "live:"
WAIT_PREFIX = "wait:"
MAX_WAIT_MS = 600_000


def parse_size(text: str) -> tuple[int, int]:
    """``120x40`` → (120, 40)."""
    match = SIZE_PATTERN.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 120x40, got {text!r}")
    width, height = int(match[1]), int(match[2])
    if width < 20 or height < 5:
        raise argparse.ArgumentTypeError(f"{text!r} is too small; the least is 20x5")
    return width, height


def parse_keys(text: str) -> list[str]:
    """``j,j,enter`` → ["j", "j", "enter"]: Textual key names, comma-separated; ``wait:MS``
    pauses (live panes keep reading meanwhile)."""
    keys = [key.strip() for key in text.split(",") if key.strip()]
    for key in keys:
        if key.startswith(WAIT_PREFIX) and wait_ms(key) is None:
            raise argparse.ArgumentTypeError(f"{key!r}: expected wait:MILLISECONDS, e.g. wait:500")
    return keys


def wait_ms(key: str) -> int | None:
    """The milliseconds of a ``wait:MS`` key, or None when it is not one."""
    number = key[len(WAIT_PREFIX):] if key.startswith(WAIT_PREFIX) else ""
    return int(number) if number.isdigit() and int(number) <= MAX_WAIT_MS else None


async def settle(app: App[Any], pilot: Pilot[Any]) -> None:
    """Wait until the app's workers are done (and those they started) and the screen caught up.

    Workers in a group named ``live:…`` stream for as long as their screen is open (telemetry,
    log tails); nobody waits for those.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT_S
    while loop.time() < deadline:
        busy = [w for w in app.workers
                if not w.is_finished and not w.group.startswith(LIVE_GROUP_PREFIX)]
        if not busy:
            break
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(w.wait() for w in busy), return_exceptions=True),
                deadline - loop.time(),
            )
        await pilot.pause()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


async def run_headless(
    app: App[Any], size: tuple[int, int], keys: list[str], screenshot: Path | None
) -> int:
    """Play ``keys`` and write ``screenshot``; the app's own exceptions propagate to the caller."""
    async with app.run_test(size=size, notifications=True) as pilot:
        await settle(app, pilot)
        for key in keys:
            if not app.is_running:
                break
            pause = wait_ms(key)
            if pause is not None:
                await asyncio.sleep(pause / 1000)
            else:
                await pilot.press(key)
            await settle(app, pilot)
        if screenshot is not None:
            if not app.is_running:
                raise GputuiError(f"the app quit before the screenshot; {screenshot} not written")
            write_screen(app, screenshot)
    return app.return_code or 0


def write_screen(app: App[Any], path: Path) -> None:
    """SVG for ``.svg``; the characters on screen, one line per row, for anything else."""
    text = app.export_screenshot() if path.suffix.lower() == ".svg" else screen_text(app)
    path.write_text(text, encoding="utf-8")


def screen_text(app: App[Any]) -> str:
    """The screen as plain text, modal dialogs over what lies beneath, as a person sees it."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    # The same render that App.export_screenshot draws into its SVG.
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    lines = console.export_text(styles=False).splitlines()
    return "\n".join(line.rstrip() for line in lines) + "\n"
