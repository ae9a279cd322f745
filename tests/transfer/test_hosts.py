"""Host profiles: round trip, file mode, atomic writes and errors that name file and line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from transfer.errors import ConfigError, HostNotFound
from transfer.hosts import LOCAL, HostProfile, HostStore


@pytest.fixture
def store(tmp_path: Path) -> HostStore:
    return HostStore(tmp_path / "hosts.yaml")


def full_profile() -> HostProfile:
    return HostProfile(
        name="a100-box",
        hostname="203.0.113.7",
        user="ubuntu",
        port=22022,
        identity_file="~/.ssh/id_lambda",
        proxy_jump="bastion",
        workdir="/workspace/proj",
        env_activation="conda activate train",
        setup_command="pip install -r requirements.txt",
        provider="lambda",
        rate_usd_per_hour=1.29,
        stop_command="sudo shutdown -h now",
        tags=["a100", "spot"],
    )


def test_round_trip_keeps_every_field(store: HostStore) -> None:
    profile = full_profile()
    store.upsert(profile)
    loaded = store.get("a100-box")
    assert loaded == profile
    assert [h.name for h in store.load()] == [LOCAL, "a100-box"]


def test_file_is_private_and_written_atomically(store: HostStore) -> None:
    store.upsert(full_profile())
    assert os.stat(store.path).st_mode & 0o777 == 0o600
    # No temp file left behind; the lock file that writers share stays.
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["hosts.yaml", "hosts.yaml.lock"]


def test_loose_mode_is_tightened_on_read(store: HostStore) -> None:
    store.upsert(full_profile())
    store.path.chmod(0o644)
    store.load()
    assert os.stat(store.path).st_mode & 0o777 == 0o600


def test_local_host_is_builtin_and_cannot_be_removed(store: HostStore) -> None:
    local = store.get(LOCAL)
    assert local.is_local and local.address == "this machine"
    with pytest.raises(ConfigError):
        store.remove(LOCAL)
    assert not store.path.exists()


def test_local_host_can_be_tuned_and_stays_local(store: HostStore) -> None:
    store.path.write_text("hosts:\n  local:\n    rate_usd_per_hour: 0.3\n")
    local = store.get(LOCAL)
    assert local.is_local and local.rate_usd_per_hour == 0.3


def test_remove_and_missing_host(store: HostStore) -> None:
    store.upsert(full_profile())
    store.remove("a100-box")
    with pytest.raises(HostNotFound, match="no host named 'a100-box'"):
        store.get("a100-box")
    with pytest.raises(HostNotFound):
        store.remove("a100-box")


def test_malformed_yaml_names_file_and_line(store: HostStore) -> None:
    store.path.write_text("hosts:\n  gpu:\n    hostname: 1.2.3.4\n    port: [22\n")
    with pytest.raises(ConfigError) as err:
        store.load()
    message = str(err.value)
    assert message.startswith(f"{store.path}:")
    assert "invalid YAML" in message and "\n" not in message


def test_bad_field_names_file_line_and_field(store: HostStore) -> None:
    store.path.write_text(
        "hosts:\n  ok:\n    hostname: a\n  gpu:\n    hostname: b\n    port: 70000\n"
    )
    with pytest.raises(ConfigError) as err:
        store.load()
    assert str(err.value).startswith(f"{store.path}:6: host 'gpu', field 'port'")


def test_unknown_field_is_refused(store: HostStore) -> None:
    store.path.write_text("hosts:\n  gpu:\n    hostname: b\n    password: hunter2\n")
    with pytest.raises(ConfigError, match=r":4: host 'gpu', field 'password'"):
        store.load()


def test_malformed_file_is_never_overwritten(store: HostStore) -> None:
    bad = "hosts:\n  gpu: {hostname: b\n"
    store.path.write_text(bad)
    with pytest.raises(ConfigError):
        store.upsert(full_profile())
    assert store.path.read_text() == bad


@pytest.mark.parametrize("name", ["", "-rf", "a b", "x" * 65, "semi;colon"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        HostProfile(name=name, hostname="h")


def test_hostname_cannot_smuggle_options() -> None:
    with pytest.raises(ValueError):
        HostProfile(name="x", hostname="-oProxyCommand=evil")
