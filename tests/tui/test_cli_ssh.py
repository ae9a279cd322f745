"""``gputui hosts test`` and ``hosts trust`` against a real OpenSSH server.

Unknown key → refused with its fingerprint; trusted → the probe answers; changed → refused.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import HOSTILE_TEXT, on_terminal, plant, shows_raw_control
from sshd import SshServer, free_port, generate_key, key_fingerprint

from transfer.hosts import HostProfile, HostStore
from tui.cli import main
from tui.text import terminal_safe

Capture = pytest.CaptureFixture[str]


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    assert err.startswith("gputui: ") and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


class TtyInput(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_unknown_key_then_trust_then_test(
    sshd_server: SshServer, isolated_home: Path, capsys: Capture
) -> None:
    HostStore().upsert(sshd_server.profile("box"))
    fingerprint = sshd_server.host_key_fingerprint()

    code, out, err = run(capsys, "hosts", "test", "box")
    assert code == 3
    assert fingerprint in one_line(err) and "gputui hosts trust box" in err

    code, out, err = run(capsys, "hosts", "test", "box", "--json")
    assert code == 3
    assert json.loads(out) == {"host": "box", "ok": False, "error": err.strip()[8:],
                               "error_type": "HostKeyUnknown"}

    code, out, err = run(capsys, "hosts", "trust", "box")  # no terminal, no --yes
    assert code == 2
    assert "--yes" in one_line(err)
    assert fingerprint in out
    assert not (isolated_home / "known_hosts").exists()

    code, out, err = run(capsys, "hosts", "trust", "box", "--yes")
    assert (code, err) == (0, "")
    assert fingerprint in out and "trusted" in out
    assert (isolated_home / "known_hosts").read_text().count("ssh-ed25519") == 1

    code, out, _ = run(capsys, "hosts", "trust", "box", "--yes")
    assert code == 0 and "already trusted" in out

    code, out, err = run(capsys, "hosts", "test", "box")
    assert (code, err) == (0, "")
    assert "latency" in out and "tmux" in out and "disk free" in out

    code, out, _ = run(capsys, "hosts", "test", "box", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and report["host"] == "box"
    assert report["latency_ms"] > 0 and report["tmux"] is True and report["rsync"] is True
    assert report["disk_free_bytes"] > 0


def test_trust_asks_on_a_terminal(
    sshd_server: SshServer, isolated_home: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    HostStore().upsert(sshd_server.profile("box"))
    monkeypatch.setattr("sys.stdin", TtyInput())
    answers = iter(["n", "y"])
    prompts: list[str] = []

    def fake_input(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("builtins.input", fake_input)

    code, _, err = run(capsys, "hosts", "trust", "box")
    assert code == 1 and "not trusted" in one_line(err)
    assert not (isolated_home / "known_hosts").exists()

    code, out, _ = run(capsys, "hosts", "trust", "box")
    assert code == 0 and "trusted" in out
    assert prompts == ["Trust this key? [y/N] "] * 2


def test_changed_key_is_refused_by_test_and_trust(
    fresh_sshd: SshServer, isolated_home: Path, capsys: Capture
) -> None:
    HostStore().upsert(fresh_sshd.profile("box"))
    assert run(capsys, "hosts", "trust", "box", "--yes")[0] == 0
    assert run(capsys, "hosts", "test", "box")[0] == 0
    trusted = (isolated_home / "known_hosts").read_text()

    fresh_sshd.rotate_host_key()
    new_fingerprint = fresh_sshd.host_key_fingerprint()

    code, _, err = run(capsys, "hosts", "test", "box")
    assert code == 4
    line = one_line(err)
    assert "CHANGED" in line and new_fingerprint in line

    code, _, err = run(capsys, "hosts", "trust", "box", "--yes")
    assert code == 4 and "CHANGED" in one_line(err)
    assert (isolated_home / "known_hosts").read_text() == trusted


def test_unreachable_host_is_one_line(isolated_home: Path, capsys: Capture) -> None:
    HostStore().upsert(HostProfile(name="gone", hostname="127.0.0.1", port=free_port()))
    code, _, err = run(capsys, "hosts", "test", "gone")
    assert code == 1
    assert "gone" in one_line(err)


def hostile_gpu_names() -> dict[str, str]:
    return {key: f"GPU {key} {text}" for key, text in HOSTILE_TEXT.items()}


HOSTILE_DRIVER = "535" + HOSTILE_TEXT["clear"] + HOSTILE_TEXT["markup"]


@pytest.fixture
def hostile_probe(fresh_sshd: SshServer) -> SshServer:
    """A host whose nvidia-smi names its GPUs and driver with escape sequences and markup."""
    fresh_sshd.trust()
    HostStore().upsert(fresh_sshd.profile("box"))
    lines = "".join(f"{name}, 81920, {HOSTILE_DRIVER}\n" for name in hostile_gpu_names().values())
    plant(fresh_sshd, "nvidia-smi", f"#!/usr/bin/env python3\nimport sys\n"
          f"sys.stdout.write({lines!r})\n")
    return fresh_sshd


def gputui_piped(*argv: str) -> tuple[int, str, str]:
    """``gputui ARGV`` with its output going to pipes, as in a script."""
    done = subprocess.run(
        [sys.executable, "-m", "tui.cli", *argv],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
        cwd=Path(__file__).resolve().parents[2],
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_probe_results_reach_the_terminal_escaped_and_never_as_markup(
    hostile_probe: SshServer, terminal: bool
) -> None:
    code, out, err = (on_terminal if terminal else gputui_piped)("hosts", "test", "box")
    assert (code, err) == (0, "")
    assert not shows_raw_control(out)

    def unwrapped(text: str) -> str:  # a terminal of 80 columns wraps the long GPU lines
        return "".join(text.split())

    for shown in [*hostile_gpu_names().values(), HOSTILE_DRIVER]:
        assert unwrapped(terminal_safe(shown)) in unwrapped(out)
    assert unwrapped(HOSTILE_TEXT["markup"]) in unwrapped(out)  # as text, not made a link

    # For scripts, --json carries the exact strings, as valid JSON.
    code, out, err = gputui_piped("hosts", "test", "box", "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert [gpu["name"] for gpu in report["gpus"]] == list(hostile_gpu_names().values())
    assert {gpu["driver"] for gpu in report["gpus"]} == {HOSTILE_DRIVER}


def test_a_host_certified_by_an_unknown_ca_is_trusted_by_its_own_key(
    fresh_sshd: SshServer, isolated_home: Path, tmp_path: Path, capsys: Capture
) -> None:
    ca = generate_key(tmp_path / "ca" / "host_ca")
    fresh_sshd.certify_host_key(ca)
    ca_fingerprint = key_fingerprint(ca.with_name("host_ca.pub"))
    HostStore().upsert(fresh_sshd.profile("box"))

    code, _, err = run(capsys, "hosts", "test", "box")
    assert code == 3
    line = one_line(err)
    assert "unknown host key" in line and "CHANGED" not in line
    assert fresh_sshd.host_key_fingerprint() in line and ca_fingerprint in line

    code, out, err = run(capsys, "hosts", "trust", "box", "--yes")
    assert (code, err) == (0, "")
    assert fresh_sshd.host_key_fingerprint() in out and ca_fingerprint in out
    assert (isolated_home / "known_hosts").read_text() == fresh_sshd.known_hosts_line() + "\n"
    assert run(capsys, "hosts", "test", "box")[0] == 0


def test_a_revoked_key_is_refused_by_test_and_trust_in_one_line(
    fresh_sshd: SshServer, isolated_home: Path, capsys: Capture
) -> None:
    HostStore().upsert(fresh_sshd.profile("box"))
    key = fresh_sshd.known_hosts_line().split(" ", 1)[1]
    (isolated_home / "known_hosts").write_text(f"@revoked * {key}\n")
    for argv in (["test", "box"], ["trust", "box", "--yes"]):
        code, _, err = run(capsys, "hosts", *argv)
        assert code == 4
        line = one_line(err)
        assert "revoked" in line and fresh_sshd.host_key_fingerprint() in line
