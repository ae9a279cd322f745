"""Calling the CLI in-process from the job tests, and waiting for a job to end."""

from __future__ import annotations

import json

import pytest
from waiting import until

from tui.cli import main


def gputui(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def wait_until_ended(capsys: pytest.CaptureFixture[str], job: str, timeout: float = 10) -> dict:
    """The job's `gputui jobs --json` entry once it no longer runs."""

    def ended() -> dict | None:
        code, out, _ = gputui(capsys, "jobs", "gpu1", "--json")
        assert code == 0
        found = next(j for j in json.loads(out) if j["id"] == job)
        return found if found["state"] not in ("starting", "running") else None

    return until(ended, timeout, what=f"job {job} to end", interval=0.1)
