"""The app driven with Pilot: filter, navigate, add, edit, delete, test and trust hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widgets import Input, Static
from tui_fakes import HOST_NAMES, FakeChecks, FakeGpu, FakeKey, FakeReport

from transfer.errors import HostKeyChanged, HostKeyUnknown, HostUnreachable
from transfer.hosts import HostStore
from tui.app import GputuiApp
from tui.cli.headless import screen_text, settle
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.host_form import HostFormScreen
from tui.screens.host_list import HostListScreen
from tui.screens.host_screen import HostScreen
from tui.screens.trust_key import TrustKeyScreen
from tui.widgets.host_table import HostTable

SIZE = (120, 40)
FINGERPRINT = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"


def table(app: GputuiApp) -> HostTable:
    return app.screen.query_one("#hosts", HostTable)


def rows(app: GputuiApp) -> list[str]:
    return [str(key.value) for key in table(app).rows]


def row_cells(app: GputuiApp, name: str) -> list[str]:
    return [str(cell) for cell in table(app).get_row(name)]


def notices(app: GputuiApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def started(pilot: Pilot[None]) -> None:
    await settle(pilot.app, pilot)


async def type_text(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text)


async def test_lists_every_host_from_the_file(hosts_yaml: Path) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert rows(app) == HOST_NAMES
        assert row_cells(app, "a100-box")[:4] == ["a100-box", "ubuntu@203.0.113.7:22022", "—",
                                                  "1.29"]
        assert str(app.screen.query_one("#host-count", Static).render()) == "4 hosts"
        assert isinstance(app.focused, HostTable)


async def test_slash_then_typing_filters_fuzzily(hosts_yaml: Path) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await type_text(pilot, "lmbd")  # provider "lambda", letters in order with gaps
        assert rows(app) == ["a100-box"]
        await pilot.press("backspace", "backspace", "backspace", "backspace")
        await type_text(pilot, "spot")  # a tag
        assert rows(app) == ["a100-box"]
        await pilot.press("escape")  # clears the filter and returns to the table
        assert rows(app) == HOST_NAMES
        assert isinstance(app.focused, HostTable)


async def test_typing_on_the_table_starts_the_filter(hosts_yaml: Path) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await type_text(pilot, "h1")  # "h" is no command, so it goes to the filter
        assert app.screen.query_one("#filter", Input).value == "h1"
        assert rows(app) == ["h100-pod"]
        assert "1 of 4 hosts match" in str(app.screen.query_one("#host-count", Static).render())


async def test_filter_matches_address_and_every_word(hosts_yaml: Path) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("slash")
        await type_text(pilot, "192.168")
        assert rows(app) == ["home-4090"]
        app.screen.query_one("#filter", Input).value = "root runpod"
        await pilot.pause()
        assert rows(app) == ["h100-pod"]
        app.screen.query_one("#filter", Input).value = "root lambda"
        await pilot.pause()
        assert rows(app) == []


async def test_j_k_move_and_enter_opens_the_host_screen(hosts_yaml: Path) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("j", "j")
        assert table(app).highlighted_name == "h100-pod"
        await pilot.press("k")
        assert table(app).highlighted_name == "a100-box"
        await pilot.press("down", "down", "up")
        assert table(app).highlighted_name == "h100-pod"
        await pilot.press("enter")
        assert isinstance(app.screen, HostScreen)
        assert app.screen.host_name == "h100-pod"
        assert {pane.border_title for pane in app.screen.query(".pane")} == {
            "[1] Jobs", "[2] Logs", "[3] Metrics", "[4] Transfers", "[5] GPU"
        }
        await pilot.press("escape")
        assert isinstance(app.screen, HostListScreen)


async def test_enter_in_the_filter_opens_the_best_match(hosts_yaml: Path) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("slash")
        await type_text(pilot, "4090")
        await pilot.press("enter")
        assert isinstance(app.screen, HostScreen)
        assert app.screen.host_name == "home-4090"


async def test_add_a_host_through_the_form(hosts_yaml: Path) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("a")
        assert isinstance(app.screen, HostFormScreen)
        await type_text(pilot, "new-box")  # the name field has the focus
        form = app.screen
        values = {"hostname": "10.0.0.9", "user": "me", "port": "2200",
                  "rate_usd_per_hour": "0.5", "tags": "spot, l4", "provider": "vast",
                  "env_activation": "source .venv/bin/activate"}
        for field, value in values.items():
            form.query_one(f"#field-{field}", Input).value = value
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, HostListScreen)
        assert rows(app) == [*HOST_NAMES, "new-box"]
        saved = HostStore().get("new-box")
        assert (saved.hostname, saved.user, saved.port, saved.rate_usd_per_hour) == (
            "10.0.0.9", "me", 2200, 0.5)
        assert saved.tags == ["spot", "l4"]
        assert saved.env_activation == "source .venv/bin/activate"
        assert hosts_yaml.stat().st_mode & 0o777 == 0o600


async def test_form_shows_each_invalid_field_and_saves_nothing(hosts_yaml: Path) -> None:
    before = hosts_yaml.read_bytes()
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("a")
        form = app.screen
        for field, value in {"name": "a100-box", "port": "70000",
                             "rate_usd_per_hour": "-1"}.items():
            form.query_one(f"#field-{field}", Input).value = value
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is form
        errors = {
            field: str(form.query_one(f"#error-{field}", Static).render())
            for field in ("name", "hostname", "port", "rate_usd_per_hour", "user")
        }
        assert "already exists" in errors["name"]
        assert "required" in errors["hostname"]
        assert "65535" in errors["port"]
        assert "greater than or equal to 0" in errors["rate_usd_per_hour"]
        assert errors["user"] == ""
        assert form.query_one("#error-port").has_class("visible")
        await pilot.press("escape")
        assert isinstance(app.screen, HostListScreen)
    assert hosts_yaml.read_bytes() == before


async def test_edit_renames_and_changes_a_host(hosts_yaml: Path) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("j", "e")
        form = app.screen
        assert isinstance(form, HostFormScreen)
        assert form.query_one("#field-port", Input).value == "22022"
        assert form.query_one("#field-tags", Input).value == "a100, spot"
        form.query_one("#field-name", Input).value = "a100-lambda"
        form.query_one("#field-user", Input).value = ""
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert rows(app) == ["local", "a100-lambda", "h100-pod", "home-4090"]
    names = [h.name for h in HostStore().load()]
    assert names == ["local", "a100-lambda", "h100-pod", "home-4090"]
    edited = HostStore().get("a100-lambda")
    assert edited.user is None and edited.port == 22022 and edited.tags == ["a100", "spot"]


async def test_delete_asks_first(hosts_yaml: Path) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("j", "j", "D")
        assert isinstance(app.screen, ConfirmScreen)
        assert "h100-pod" in app.screen.question
        await pilot.press("n")
        await settle(app, pilot)
        assert "h100-pod" in rows(app)
        await pilot.press("D", "y")
        await settle(app, pilot)
        assert rows(app) == ["local", "a100-box", "home-4090"]
    assert [h.name for h in HostStore().load()] == ["local", "a100-box", "home-4090"]


async def test_the_local_host_cannot_be_deleted(hosts_yaml: Path) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(pilot)
        await pilot.press("D")
        assert isinstance(app.screen, HostListScreen)
        assert any("cannot be deleted" in n for n in notices(app))


async def test_test_shows_latency_and_gpus(hosts_yaml: Path, fake_checks: FakeChecks) -> None:
    gpu = FakeGpu("NVIDIA A100-SXM4-80GB", 81920, "550.54")
    fake_checks.script("a100-box", FakeReport("a100-box", 12.4, [gpu, gpu]))
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("j", "t")
        await settle(app, pilot)
        cells = row_cells(app, "a100-box")
        assert cells[2] == "2× A100-SXM4-80GB"
        assert cells[4] == "✓ 12 ms"
        assert fake_checks.probed == ["a100-box"]


async def test_unreachable_host_shows_the_reason(
    hosts_yaml: Path, fake_checks: FakeChecks
) -> None:
    fake_checks.script("h100-pod", HostUnreachable(
        "cannot reach h100-pod (root@h100.example.com): Connection refused"))
    app = GputuiApp()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(pilot)
        await pilot.press("j", "j", "t")
        await settle(app, pilot)
        assert row_cells(app, "h100-pod")[4] == "✗ Connection refused"
        assert any("cannot reach h100-pod" in n for n in notices(app))


async def test_unknown_key_opens_the_trust_dialog_and_trusting_retests(
    hosts_yaml: Path, fake_checks: FakeChecks
) -> None:
    key = FakeKey("a100-box", "ssh-ed25519", FINGERPRINT)
    fake_checks.keys["a100-box"] = key
    fake_checks.script(
        "a100-box",
        HostKeyUnknown("a100-box", FINGERPRINT, "ssh-ed25519"),
        FakeReport("a100-box", 30.0),
    )
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("j", "t")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, TrustKeyScreen)
        assert str(dialog.query_one("#trust-key-fingerprint", Static).render()) == FINGERPRINT
        await pilot.click("#trust-yes")
        await settle(app, pilot)
        await settle(app, pilot)
        assert fake_checks.trusted == [("a100-box", key)]
        assert isinstance(app.screen, HostListScreen)
        assert row_cells(app, "a100-box")[4] == "✓ 30 ms"
        assert fake_checks.probed == ["a100-box", "a100-box"]


async def test_cancelling_the_trust_dialog_trusts_nothing(
    hosts_yaml: Path, fake_checks: FakeChecks
) -> None:
    fake_checks.keys["a100-box"] = FakeKey("a100-box", "ssh-ed25519", FINGERPRINT)
    fake_checks.script("a100-box", HostKeyUnknown("a100-box", FINGERPRINT, "ssh-ed25519"))
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("j", "t")
        await settle(app, pilot)
        assert isinstance(app.screen, TrustKeyScreen)
        assert app.focused is not None and app.focused.id == "trust-close"
        await pilot.press("enter")  # the focused button is Cancel
        await settle(app, pilot)
        assert isinstance(app.screen, HostListScreen)
        assert fake_checks.trusted == []
        assert row_cells(app, "a100-box")[4] == "key?"


async def test_a_changed_key_is_refused_with_no_trust_button(
    hosts_yaml: Path, fake_checks: FakeChecks
) -> None:
    fake_checks.keys["a100-box"] = FakeKey("a100-box", "ssh-ed25519", FINGERPRINT)
    fake_checks.script("a100-box", HostKeyChanged("a100-box", FINGERPRINT, "ssh-ed25519"))
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("j", "t")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, TrustKeyScreen)
        assert dialog.query_one("#trust-key").has_class("key-changed")
        assert not dialog.query("#trust-yes")
        assert "CHANGED" in str(dialog.query_one("#trust-key-title").render())
        await pilot.press("escape")
        assert row_cells(app, "a100-box")[4] == "✗ KEY CHANGED"
        assert fake_checks.trusted == []


async def test_trust_dialog_pushed_directly_returns_the_answer(hosts_yaml: Path) -> None:
    app = GputuiApp()
    answers: list[bool | None] = []
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        host = app.host_named("h100-pod")
        assert host is not None
        key = FakeKey("h100-pod", "ecdsa-sha2-nistp256", FINGERPRINT)
        app.push_screen(TrustKeyScreen(host, key), answers.append)
        await pilot.pause()
        assert "root@h100.example.com" in str(app.screen.query_one(".trust-key-text").render())
        await pilot.click("#trust-yes")
        await pilot.pause()
    assert answers == [True]


async def test_malformed_file_starts_with_local_and_is_never_written(
    isolated_home: Path,
) -> None:
    path = isolated_home / "hosts.yaml"
    path.write_text("hosts:\n  box:\n    hostname: [unclosed\n", encoding="utf-8")
    before = path.read_bytes()
    app = GputuiApp()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(pilot)
        assert rows(app) == ["local"]
        banner = app.screen.query_one("#config-error", Static)
        assert banner.display and "hosts.yaml:" in str(banner.render())
        assert any("hosts.yaml:" in n for n in notices(app))
        await pilot.press("a")
        assert isinstance(app.screen, HostListScreen)  # no form: it could not be saved
        assert any("nothing is written" in n for n in notices(app))
    assert path.read_bytes() == before


async def test_help_lists_the_keys_of_the_screen_below(hosts_yaml: Path) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert "Delete the highlighted host profile" in text
        assert "j ↓" in text  # keys of the same action share a line
        assert "Leave gputui" in text
        await pilot.press("escape")
        assert isinstance(app.screen, HostListScreen)


async def test_palette_runs_a_screen_action(hosts_yaml: Path) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("ctrl+p")
        await type_text(pilot, "add host")
        commands = app.screen.query_one(CommandList)
        for _ in range(100):  # the palette searches in the background
            if commands.option_count and "Add host" in str(commands.get_option_at_index(0).prompt):
                break
            await pilot.pause(0.05)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, HostFormScreen)


async def test_start_host_opens_its_screen(hosts_yaml: Path) -> None:
    app = GputuiApp(start_host="a100-box")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert isinstance(app.screen, HostScreen)
        summary = screen_text(app)
        assert "ubuntu@203.0.113.7:22022" in summary and "$1.29/h" in summary


async def test_host_screen_test_key_updates_its_summary(
    hosts_yaml: Path, fake_checks: FakeChecks
) -> None:
    fake_checks.script("a100-box", FakeReport("a100-box", 8.0, []))
    app = GputuiApp(start_host="a100-box")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("t")
        await settle(app, pilot)
        summary = screen_text(app)
        assert "✓ 8 ms" in summary and "none" in summary


@pytest.mark.parametrize("key", ["q", "ctrl+q"])
async def test_q_and_ctrl_q_quit(hosts_yaml: Path, key: str) -> None:
    app = GputuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press(key)
        await pilot.pause()
        assert not app.is_running
