"""Fixtures for the app and CLI tests: a fixed hosts.yaml and scripted host checks.

The root conftest already points ``GPUTUI_HOME`` at a fresh folder for every test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

import pytest
from tui_fakes import HOSTS_YAML, FakeChecks

from transfer.hosts import HostProfile
from transfer.jobs.host import HostJobs
from transfer.jobs.state import JobStatus
from transfer.link import Link
from transfer.local_link import LocalLink
from transfer.telemetry.events import TelemetryEvent
from tui import host_checks
from tui.services import jobs as jobs_service
from tui.services import telemetry


@pytest.fixture
def hosts_yaml(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three rented hosts besides ``local``; the local workdir fixed so screens are stable."""
    monkeypatch.setenv("GPUTUI_LOCAL_WORKDIR", "~/gputui")
    path = isolated_home / "hosts.yaml"
    path.write_text(HOSTS_YAML, encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def fake_checks(monkeypatch: pytest.MonkeyPatch) -> FakeChecks:
    checks = FakeChecks()
    monkeypatch.setattr(host_checks, "probe_host", checks.probe)
    monkeypatch.setattr(host_checks, "fetch_key", checks.fetch)
    monkeypatch.setattr(host_checks, "trust_key", checks.trust)
    return checks


class QuietStream:
    """A telemetry stream that never reports: screens stay as they are before the first sample."""

    async def events(self) -> AsyncGenerator[TelemetryEvent, None]:
        await asyncio.Event().wait()
        yield  # type: ignore[misc]  # pragma: no cover - never reached


class NoJobs(HostJobs):
    """A host with no jobs yet, answered without touching any host."""

    async def list(self) -> list[JobStatus]:
        return []


@pytest.fixture(autouse=True)
def quiet_live_panes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live panes (telemetry, jobs) read nothing, so screens are the same on every run."""

    def open_stream(
        host: HostProfile, interval: float, clock: Callable[[], float], link: Link
    ) -> QuietStream:
        return QuietStream()

    monkeypatch.setattr(telemetry, "open_stream", open_stream)
    monkeypatch.setattr(jobs_service, "open_host_jobs", lambda link: NoJobs(LocalLink(link.host)))
