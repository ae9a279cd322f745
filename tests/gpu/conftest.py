"""Fixtures for the GPU-host tests: a recorded NVML driver installed as ``pynvml``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from gpu_nvml_replay import ReplayedNvml, load_recording


@pytest.fixture
def replay_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ReplayedNvml]:
    """Install a replay of a recording as the ``pynvml`` module that the sampler imports."""

    def install(recording: str | dict[str, Any], init_error: str | None = None) -> ReplayedNvml:
        data = load_recording(recording) if isinstance(recording, str) else recording
        fake = ReplayedNvml(data, init_error)
        monkeypatch.setitem(sys.modules, "pynvml", fake)
        return fake

    return install
