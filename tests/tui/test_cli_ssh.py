"""``gputui hosts test`` and ``hosts trust`` against a real OpenSSH server.

Unknown key → refused with its fingerprint; trusted → the probe answers; changed → refused.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sshd import SshServer, free_port

from transfer.hosts import HostProfile, HostStore
from tui.cli import main

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
