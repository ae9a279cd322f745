"""Importing profiles from an OpenSSH client config."""

from __future__ import annotations

from pathlib import Path

import pytest

from transfer.errors import ConfigError
from transfer.sshconfig import import_ssh_config


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_hosts_include_proxyjump_and_defaults(tmp_path: Path) -> None:
    ssh = tmp_path / "ssh"
    write(
        ssh / "config.d" / "lambda.conf",
        "Host lambda-a100\n  HostName 203.0.113.7\n  User ubuntu\n"
        "  IdentityFile ~/.ssh/id_lambda\n",
    )
    config = write(
        ssh / "config",
        "# personal\n"
        "Include config.d/*.conf\n"
        "\n"
        "Host bastion\n"
        "    HostName bastion.example.net\n"
        "    Port 2200\n"
        "\n"
        "Host runpod gpu-*\n"
        "    HostName=ssh.runpod.example\n"
        "    Port = 40022\n"
        "    ProxyJump bastion\n"
        "\n"
        "Match host foo\n"
        "    User nobody\n"
        "\n"
        "Host *\n"
        "    User root\n"
        "    IdentityFile ~/.ssh/id_default\n",
    )
    profiles = {p.name: p for p in import_ssh_config(config)}
    assert sorted(profiles) == ["bastion", "lambda-a100", "runpod"]  # gpu-* is a pattern
    lam = profiles["lambda-a100"]
    assert (lam.hostname, lam.user, lam.port, lam.identity_file, lam.proxy_jump) == (
        "203.0.113.7", "ubuntu", 22, "~/.ssh/id_lambda", None,
    )
    run = profiles["runpod"]
    assert (run.hostname, run.user, run.port, run.proxy_jump, run.identity_file) == (
        "ssh.runpod.example", "root", 40022, "bastion", "~/.ssh/id_default",
    )
    bastion = profiles["bastion"]
    assert (bastion.hostname, bastion.port, bastion.user) == ("bastion.example.net", 2200, "root")


def test_first_value_wins_and_negation(tmp_path: Path) -> None:
    config = write(
        tmp_path / "config",
        "Host box\n  User first\nHost box\n  User second\n  Port 2\n"
        "Host * !box\n  Port 9\n",
    )
    (box,) = import_ssh_config(config)
    assert (box.user, box.port) == ("first", 2)


def test_bad_port_names_file_and_line(tmp_path: Path) -> None:
    config = write(tmp_path / "config", "Host x\n  Port eighty\n")
    with pytest.raises(ConfigError, match=r"config:2: Port 'eighty'"):
        import_ssh_config(config)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such ssh config file"):
        import_ssh_config(tmp_path / "nope")
