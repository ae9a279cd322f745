"""SVG snapshots at 120x40 of the screens a person sees first.

Content is fixed: a known hosts.yaml, statuses set directly (no network, no clock), and no
blinking cursor in headless runs. Review a changed snapshot in snapshot_report.html before
accepting it with ``--snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from tui_fakes import FakeGpu, FakeKey, FakeReport

from transfer.errors import HostKeyUnknown, HostUnreachable
from transfer.hosts import HostStore
from tui.app import GputuiApp
from tui.cli.headless import settle
from tui.host_checks import status_from_error
from tui.host_status import HostStatus
from tui.screens.trust_key import TrustKeyScreen

SIZE = (120, 40)
SnapCompare = Callable[..., bool]
FINGERPRINT = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
A100 = FakeGpu("NVIDIA A100-SXM4-80GB", 81920, "550.54.15")


def known_statuses(app: GputuiApp) -> None:
    app.set_status("local", HostStatus.from_report(FakeReport("local", 0.4, [])))
    app.set_status("a100-box", HostStatus.from_report(FakeReport("a100-box", 23.0, [A100, A100])))
    app.set_status("h100-pod", status_from_error(
        HostKeyUnknown("h100-pod", FINGERPRINT, "ssh-ed25519")))
    app.set_status("home-4090", status_from_error(
        HostUnreachable("cannot reach home-4090 (192.168.1.20): Connection refused")))


def test_host_list(hosts_yaml: Path, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot.app, pilot)
        known_statuses(pilot.app)  # type: ignore[arg-type]
        await pilot.press("j")

    assert snap_compare(GputuiApp(), terminal_size=SIZE, run_before=run_before)


def test_host_list_filtered(hosts_yaml: Path, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("slash", *"h1")

    assert snap_compare(GputuiApp(), terminal_size=SIZE, run_before=run_before)


def test_host_screen(hosts_yaml: Path, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot.app, pilot)
        known_statuses(pilot.app)  # type: ignore[arg-type]
        await pilot.pause()

    app = GputuiApp(start_host="a100-box")
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_trust_key_dialog(hosts_yaml: Path, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        app: GputuiApp = pilot.app  # type: ignore[assignment]
        await settle(app, pilot)
        host = app.host_named("h100-pod")
        assert host is not None
        key = FakeKey("h100-pod", "ssh-ed25519", FINGERPRINT)
        app.push_screen(TrustKeyScreen(host, key))

    assert snap_compare(GputuiApp(), terminal_size=SIZE, run_before=run_before)


def test_host_form_with_errors(hosts_yaml: Path, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("a")
        form = pilot.app.screen
        form.query_one("#field-name", Input).value = "bad name"
        form.query_one("#field-port", Input).value = "70000"
        await pilot.press("ctrl+s")

    assert snap_compare(GputuiApp(), terminal_size=SIZE, run_before=run_before)


def test_malformed_hosts_file(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, snap_compare: SnapCompare
) -> None:
    (isolated_home / "hosts.yaml").write_text("hosts:\n  box:\n    port: [22\n")
    monkeypatch.chdir(isolated_home)  # a relative path keeps the error line the same every run

    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot.app, pilot)

    app = GputuiApp(store=HostStore(Path("hosts.yaml")))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
