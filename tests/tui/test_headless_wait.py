"""``--keys … wait:MS`` pauses a headless run, so live panes can fill before a screenshot."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tui.cli import main


def test_wait_pauses_between_keys(tmp_path: Path) -> None:
    shot = tmp_path / "screen.txt"
    started = time.monotonic()
    assert main(["--headless", "--keys", "wait:400,enter", "--screenshot", str(shot)]) == 0
    assert time.monotonic() - started >= 0.4
    assert "gputui — local" in shot.read_text()  # enter still opened the host after the wait


@pytest.mark.parametrize("keys", ["wait:", "wait:abc", "wait:-5", "wait:999999999"])
def test_a_bad_wait_is_a_usage_error(keys: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--headless", "--keys", keys]) == 2
    assert "expected wait:MILLISECONDS" in capsys.readouterr().err
