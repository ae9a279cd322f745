"""The one way tests wait for something: ``until`` (plain code) and ``until_async`` (a coroutine
or a Pilot), both polling a predicate and failing with what they waited for when time is up."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from textual.css.query import NoMatches
from textual.pilot import Pilot

T = TypeVar("T")


def until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    *,
    what: str = "the condition",
    context: Callable[[], str] | None = None,
    interval: float = 0.05,
) -> T:
    """The predicate's first truthy value; an AssertionError once ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(_timed_out(timeout, what, context))
        time.sleep(interval)


async def until_async(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    *,
    what: str = "the condition",
    context: Callable[[], str] | None = None,
    interval: float = 0.05,
    pilot: Pilot[Any] | None = None,
) -> T:
    """``until`` for async code: the predicate may be a coroutine function. With a ``pilot`` the
    app is let run between looks, and a widget not composed yet (NoMatches) counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        value: Any = None
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
        except NoMatches:
            if pilot is None:
                raise
        if value:
            return value  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(_timed_out(timeout, what, context))
        if pilot is None:
            await asyncio.sleep(interval)
        else:
            await pilot.pause(interval)


async def pilot_until(pilot: Pilot[Any], check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait for what the app shows."""
    await until_async(check, timeout, what="the app", pilot=pilot)


def file_holds(path: Path, text: str) -> bool:
    """Whether ``path`` exists and contains ``text`` (a job's log, say)."""
    return path.exists() and text in path.read_text()


def _timed_out(timeout: float, what: str, context: Callable[[], str] | None) -> str:
    message = f"timed out after {timeout:g} s waiting for {what}"
    return f"{message}\n{context()}" if context is not None else message
