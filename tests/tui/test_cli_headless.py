"""``gputui --headless``: the app runs without a terminal, plays keys and writes the screen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui.app import GputuiApp
from tui.cli import main

REPO = Path(__file__).resolve().parents[2]


def gputui(*argv: str) -> subprocess.CompletedProcess[str]:
    """The real command in a child process, as a script would run it."""
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_screenshot_svg_shows_the_host_list(hosts_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.svg"
    result = gputui("--headless", "--screenshot", str(out))
    assert result.returncode == 0, result.stderr
    svg = out.read_text()
    assert svg.startswith("<svg")
    for text in ("a100-box", "h100-pod", "home-4090", "Reachability", "Filter"):
        assert text in svg


def test_keys_open_a_host_and_text_screenshot(hosts_yaml: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "screen.txt"
    code = main(["--headless", "--size", "100x30", "--keys", "j,j,enter", "--screenshot",
                 str(out)])
    assert code == 0, capsys.readouterr().err
    lines = out.read_text().splitlines()
    assert len(lines) == 30 and max(len(line) for line in lines) <= 100
    text = "\n".join(lines)
    assert "gputui — h100-pod" in text
    assert "root@h100.example.com" in text
    for key, pane in enumerate(("Jobs", "Logs", "Metrics", "Transfers", "GPU"), 1):
        assert f"─ [{key}] {pane} ─" in text


def test_host_flag_opens_on_the_host_screen(hosts_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "screen.txt"
    assert main(["--headless", "--host", "home-4090", "--screenshot", str(out)]) == 0
    assert "gputui — home-4090" in out.read_text()
    assert main(["--headless", "--host", "home-4090", "--keys", "escape",
                 "--screenshot", str(out)]) == 0
    assert "Reachability" in out.read_text()  # back on the list


def test_typed_keys_filter(hosts_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "screen.txt"
    assert main(["--headless", "--keys", "slash,r,u,n,p", "--screenshot", str(out)]) == 0
    text = out.read_text()
    assert "h100-pod" in text and "a100-box" not in text and "1 of 4 hosts match" in text


def test_quitting_before_the_screenshot_is_an_error(
    hosts_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "screen.svg"
    assert main(["--headless", "--keys", "q", "--screenshot", str(out)]) == 1
    assert "quit before the screenshot" in capsys.readouterr().err
    assert not out.exists()
    assert main(["--headless", "--keys", "q"]) == 0


def test_an_app_that_raises_exits_non_zero(
    hosts_yaml: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken_help(self: GputuiApp) -> None:
        raise RuntimeError("help is broken")

    monkeypatch.setattr(GputuiApp, "action_help", broken_help)
    assert main(["--headless", "--keys", "question_mark"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: help is broken" in err
