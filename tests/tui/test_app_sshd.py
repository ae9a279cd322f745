"""The app's test and trust flow against a real OpenSSH server, no fakes."""

from __future__ import annotations

from pathlib import Path

from sshd import SshServer
from textual.widgets import Static

from transfer.hosts import HostStore
from tui.app import GputuiApp
from tui.cli.headless import settle
from tui.screens.host_list import HostListScreen
from tui.screens.trust_key import TrustKeyScreen
from tui.widgets.host_table import HostTable

SIZE = (120, 40)


def reachability(app: GputuiApp, name: str) -> str:
    return str(app.screen.query_one("#hosts", HostTable).get_row(name)[4])


async def test_trust_a_new_key_in_the_dialog_then_the_test_passes(
    sshd_server: SshServer, isolated_home: Path
) -> None:
    HostStore().upsert(sshd_server.profile("box"))
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("j", "t")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, TrustKeyScreen)
        shown = str(dialog.query_one("#trust-key-fingerprint", Static).render())
        assert shown == sshd_server.host_key_fingerprint()
        await pilot.click("#trust-yes")
        await settle(app, pilot)
        await settle(app, pilot)
        assert isinstance(app.screen, HostListScreen)
        assert reachability(app, "box").startswith("✓ ")
    assert "ssh-ed25519" in (isolated_home / "known_hosts").read_text()


async def test_a_changed_key_gets_the_refusal(fresh_sshd: SshServer, isolated_home: Path) -> None:
    HostStore().upsert(fresh_sshd.profile("box"))
    (isolated_home / "known_hosts").write_text(fresh_sshd.known_hosts_line() + "\n")
    fresh_sshd.rotate_host_key()
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("j", "t")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, TrustKeyScreen) and dialog.changed
        assert not dialog.query("#trust-yes")
        shown = str(dialog.query_one("#trust-key-fingerprint", Static).render())
        assert shown == fresh_sshd.host_key_fingerprint()
        await pilot.press("escape")
        assert reachability(app, "box") == "✗ KEY CHANGED"
