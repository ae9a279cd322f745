"""``gputui hosts …`` and the top-level flags: output, exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tui_fakes import HOSTS_YAML

from transfer.hosts import HostStore
from tui.cli import main

Capture = pytest.CaptureFixture[str]


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert err.startswith("gputui: ")
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    for fragment in fragments:
        assert fragment in err


def test_version(capsys: Capture) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.startswith("gputui 0.")


def test_list_without_a_file_shows_the_local_host(capsys: Capture) -> None:
    code, out, _ = run(capsys, "hosts", "list")
    assert code == 0
    assert "local" in out and "this machine" in out
    code, out, _ = run(capsys, "hosts", "list", "--json")
    data = json.loads(out)
    assert [host["name"] for host in data] == ["local"]
    assert data[0]["transport"] == "local"


def test_list_shows_every_profile(hosts_yaml: Path, capsys: Capture) -> None:
    code, out, _ = run(capsys, "hosts", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ADDRESS", "PROVIDER", "$/H", "WORKDIR", "TAGS"]
    a100 = next(line for line in lines if line.startswith("a100-box"))
    assert "ubuntu@203.0.113.7:22022" in a100 and "lambda" in a100 and "1.29" in a100
    assert "a100, spot" in a100


def test_add_with_every_flag_round_trips_through_list_json(capsys: Capture) -> None:
    code, out, err = run(
        capsys, "hosts", "add", "lambda-a100", "--host", "203.0.113.7", "--user", "ubuntu",
        "--port", "2222", "--key", "~/.ssh/id_lambda", "--jump", "bastion",
        "--workdir", "/workspace/proj", "--rate", "1.29", "--env-activation",
        "conda activate train", "--setup", "pip install -r requirements.txt",
        "--provider", "lambda", "--stop-command", "sudo shutdown -h now",
        "--tag", "a100", "--tag", "spot",
    )
    assert (code, err) == (0, "")
    assert "added lambda-a100 (ubuntu@203.0.113.7:2222)" in out
    code, out, _ = run(capsys, "hosts", "list", "--json")
    host = next(h for h in json.loads(out) if h["name"] == "lambda-a100")
    assert host == {
        "name": "lambda-a100", "transport": "ssh", "hostname": "203.0.113.7", "user": "ubuntu",
        "port": 2222, "identity_file": "~/.ssh/id_lambda", "proxy_jump": "bastion",
        "workdir": "/workspace/proj", "env_activation": "conda activate train",
        "setup_command": "pip install -r requirements.txt", "provider": "lambda",
        "rate_usd_per_hour": 1.29, "stop_command": "sudo shutdown -h now",
        "tags": ["a100", "spot"],
    }
    assert HostStore().path.stat().st_mode & 0o777 == 0o600


def test_add_refuses_an_existing_name_unless_replace(hosts_yaml: Path, capsys: Capture) -> None:
    code, _, err = run(capsys, "hosts", "add", "a100-box", "--host", "10.0.0.1")
    assert code == 2
    assert_one_line_error(err, "'a100-box' already exists", "--replace")
    assert HostStore().get("a100-box").hostname == "203.0.113.7"
    code, _, _ = run(capsys, "hosts", "add", "a100-box", "--host", "10.0.0.1", "--replace")
    assert code == 0
    assert HostStore().get("a100-box").hostname == "10.0.0.1"


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["bad name", "--host", "h"], ["NAME", "letters, digits"]),
        (["box", "--host", "h", "--port", "70000"], ["--port", "65535"]),
        (["box", "--host", "h", "--rate", "-2"], ["--rate", "greater than or equal to 0"]),
        (["box", "--host=-oProxyCommand=x"], ["--host", "does not start with '-'"]),
        (["local", "--host", "h"], ["built-in"]),
    ],
)
def test_add_rejects_bad_values_with_one_line(
    capsys: Capture, argv: list[str], fragments: list[str]
) -> None:
    code, out, err = run(capsys, "hosts", "add", *argv)
    assert code == 2
    assert out == ""
    assert_one_line_error(err, *fragments)
    assert not HostStore().path.exists()


def test_add_needs_host_and_a_number_for_port(capsys: Capture) -> None:
    code, _, err = run(capsys, "hosts", "add", "box")
    assert code == 2 and "--host" in err
    code, _, err = run(capsys, "hosts", "add", "box", "--host", "h", "--port", "ssh")
    assert code == 2 and "invalid int value" in err


def test_rm(hosts_yaml: Path, capsys: Capture) -> None:
    code, out, _ = run(capsys, "hosts", "rm", "h100-pod")
    assert code == 0 and "removed h100-pod" in out
    assert [h.name for h in HostStore().load()] == ["local", "a100-box", "home-4090"]


def test_rm_unknown_and_local_fail_with_one_line(hosts_yaml: Path, capsys: Capture) -> None:
    code, _, err = run(capsys, "hosts", "rm", "nope")
    assert code == 1
    assert_one_line_error(err, "no host named 'nope'")
    code, _, err = run(capsys, "hosts", "rm", "local")
    assert code == 1
    assert_one_line_error(err, "cannot be removed")
    assert hosts_yaml.read_text() == HOSTS_YAML


def test_malformed_file_names_file_and_line_and_is_not_overwritten(
    isolated_home: Path, capsys: Capture
) -> None:
    path = isolated_home / "hosts.yaml"
    path.write_text("hosts:\n  box:\n    hostname: h\n    port: many\n")
    before = path.read_bytes()
    for argv in (["hosts", "list"], ["hosts", "list", "--json"],
                 ["hosts", "add", "other", "--host", "h"], ["hosts", "rm", "box"]):
        code, out, err = run(capsys, *argv)
        assert code == 1, argv
        assert out == ""
        assert_one_line_error(err, f"{path}:4", "port")
    assert path.read_bytes() == before


def test_unknown_host_for_test_and_trust(hosts_yaml: Path, capsys: Capture) -> None:
    for verb in ("test", "trust"):
        code, _, err = run(capsys, "hosts", verb, "nope")
        assert code == 1
        assert_one_line_error(err, "no host named 'nope'")


def test_trust_local_is_refused(capsys: Capture) -> None:
    code, _, err = run(capsys, "hosts", "trust", "local")
    assert code == 2
    assert_one_line_error(err, "no host key")


SSH_CONFIG = """\
Include conf.d/*.conf

Host gpu-a100
    HostName 203.0.113.7
    User ubuntu
    Port 2222
    IdentityFile ~/.ssh/id_lambda
    ProxyJump bastion

Host *.internal gpu-*
    User fallback

Host *
    ServerAliveInterval 30
"""
INCLUDED = """\
Host bastion
    HostName bastion.example.com
    User jump
"""


@pytest.fixture
def ssh_config(tmp_path: Path) -> Path:
    config = tmp_path / "ssh" / "config"
    (config.parent / "conf.d").mkdir(parents=True)
    config.write_text(SSH_CONFIG)
    (config.parent / "conf.d" / "bastion.conf").write_text(INCLUDED)
    return config


def test_import_all_then_list_json(ssh_config: Path, capsys: Capture) -> None:
    code, out, err = run(capsys, "hosts", "import", "--ssh-config", str(ssh_config), "--all")
    assert (code, err) == (0, "")
    assert "imported gpu-a100 (ubuntu@203.0.113.7:2222)" in out
    assert "imported bastion (jump@bastion.example.com)" in out
    code, out, _ = run(capsys, "hosts", "list", "--json")
    hosts = {h["name"]: h for h in json.loads(out)}
    assert set(hosts) == {"local", "gpu-a100", "bastion"}
    a100 = hosts["gpu-a100"]
    assert (a100["hostname"], a100["user"], a100["port"], a100["proxy_jump"]) == (
        "203.0.113.7", "ubuntu", 2222, "bastion")
    assert a100["identity_file"] is not None and a100["identity_file"].endswith("id_lambda")


def test_import_needs_names_or_all_and_lists_what_it_found(
    ssh_config: Path, capsys: Capture
) -> None:
    code, _, err = run(capsys, "hosts", "import", "--ssh-config", str(ssh_config))
    assert code == 2
    assert_one_line_error(err, "--all", "gpu-a100", "bastion")
    code, _, err = run(capsys, "hosts", "import", "--ssh-config", str(ssh_config), "nope")
    assert code == 1
    assert_one_line_error(err, "nope")
    assert not HostStore().path.exists()


def test_import_by_name_skips_existing_unless_replace(ssh_config: Path, capsys: Capture) -> None:
    run(capsys, "hosts", "add", "gpu-a100", "--host", "10.9.9.9")
    code, out, err = run(capsys, "hosts", "import", "--ssh-config", str(ssh_config),
                         "gpu-a100", "--json")
    assert code == 0
    assert json.loads(out) == []
    assert "skipped" in err and "gpu-a100" in err
    assert HostStore().get("gpu-a100").hostname == "10.9.9.9"
    code, out, _ = run(capsys, "hosts", "import", "--ssh-config", str(ssh_config),
                       "gpu-a100", "--replace", "--json")
    assert [h["name"] for h in json.loads(out)] == ["gpu-a100"]
    assert HostStore().get("gpu-a100").hostname == "203.0.113.7"


def test_missing_ssh_config_is_one_line(tmp_path: Path, capsys: Capture) -> None:
    code, _, err = run(capsys, "hosts", "import", "--ssh-config", str(tmp_path / "none"), "--all")
    assert code == 1
    assert_one_line_error(err, "no such ssh config")


def test_hosts_needs_a_verb(capsys: Capture) -> None:
    code, _, err = run(capsys, "hosts")
    assert code == 2 and "VERB" in err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--size", "120x40"], "only work with --headless"),
        (["--headless", "--screenshot", "out.png"], ".svg or .txt"),
        (["--headless", "--size", "wide"], "WIDTHxHEIGHT"),
        (["--headless", "hosts", "list"], "without a verb"),
    ],
)
def test_app_flags_are_checked(capsys: Capture, argv: list[str], fragment: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert fragment in err


def test_host_flag_with_an_unknown_host_fails_before_the_app(
    hosts_yaml: Path, capsys: Capture
) -> None:
    code, _, err = run(capsys, "--host", "nope", "--headless")
    assert code == 1
    assert_one_line_error(err, "no host named 'nope'")


def test_list_shows_brackets_as_typed_not_as_markup(capsys: Capture) -> None:
    run(capsys, "hosts", "add", "box", "--host", "h", "--workdir", "/data/[run]",
        "--tag", "[bold]x")
    code, out, _ = run(capsys, "hosts", "list")
    assert code == 0
    assert "/data/[run]" in out and "[bold]x" in out
