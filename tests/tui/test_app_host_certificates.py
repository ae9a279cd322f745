"""The app's trust dialog for a host that presents a certificate from a CA nobody trusts yet."""

from __future__ import annotations

from pathlib import Path

from sshd import SshServer, generate_key, key_fingerprint
from textual.widgets import Static

from transfer.hosts import HostStore
from tui.app import GputuiApp
from tui.cli.headless import settle
from tui.screens.host_list import HostListScreen
from tui.screens.trust_key import TrustKeyScreen
from tui.widgets.host_table import HostTable

SIZE = (120, 40)


async def test_an_unknown_ca_host_is_offered_as_unknown_with_the_ca_shown(
    fresh_sshd: SshServer, isolated_home: Path, tmp_path: Path
) -> None:
    ca = generate_key(tmp_path / "ca" / "host_ca")
    fresh_sshd.certify_host_key(ca)
    HostStore().upsert(fresh_sshd.profile("box"))
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("j", "t")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, TrustKeyScreen) and not dialog.changed
        shown = str(dialog.query_one("#trust-key-fingerprint", Static).render())
        assert shown == fresh_sshd.host_key_fingerprint()
        ca_line = "".join(str(dialog.query_one("#trust-key-ca", Static).render()).split())
        assert key_fingerprint(ca.with_name("host_ca.pub")) in ca_line
        await pilot.click("#trust-yes")
        await settle(app, pilot)
        await settle(app, pilot)
        assert isinstance(app.screen, HostListScreen)
        row = app.screen.query_one("#hosts", HostTable).get_row("box")
        assert str(row[4]).startswith("✓ ")
    assert (isolated_home / "known_hosts").read_text() == fresh_sshd.known_hosts_line() + "\n"
