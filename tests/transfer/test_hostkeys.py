"""Host keys against a real sshd: unknown keys refused with their fingerprint, trust, changes.

The fingerprints are checked against ``ssh-keygen -lf`` on the server's own public key file,
and the known_hosts that gputui writes is checked by OpenSSH's own ``ssh`` client.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sshd import SshServer, free_port, key_fingerprint

from transfer.connect import open_link
from transfer.errors import HostKeyChanged, HostKeyUnknown, HostUnreachable
from transfer.hostkeys import HostKeyInfo, fetch_host_key, key_status, trust_host_key
from transfer.known_hosts import known_as, lookup
from transfer.paths import known_hosts_file


async def connect_and_run(server: SshServer, **fields: object) -> str:
    async with open_link(server.profile("box", **fields)) as link:
        return (await link.run("echo ok", check=True)).stdout


async def test_unknown_key_is_refused_with_its_sha256_fingerprint(sshd_server: SshServer) -> None:
    with pytest.raises(HostKeyUnknown) as err:
        await connect_and_run(sshd_server)
    expected = key_fingerprint(sshd_server.host_pub_path)
    assert expected.startswith("SHA256:")
    assert err.value.fingerprint == expected
    assert err.value.key_type == "ssh-ed25519"
    assert err.value.host == "box"
    assert err.value.exit_code == 3
    assert expected in str(err.value) and "gputui hosts trust box" in str(err.value)
    assert not known_hosts_file().exists() or known_hosts_file().read_text() == ""


async def test_fetch_trust_then_connect(sshd_server: SshServer) -> None:
    profile = sshd_server.profile("box")
    info = await fetch_host_key(profile)
    assert info.fingerprint == key_fingerprint(sshd_server.host_pub_path)
    assert info.known_as == f"[127.0.0.1]:{sshd_server.port}"
    assert key_status(profile, info) == "unknown"

    trust_host_key(profile, info)
    assert key_status(profile, info) == "trusted"
    assert known_hosts_file().read_text() == sshd_server.known_hosts_line() + "\n"
    assert known_hosts_file().stat().st_mode & 0o777 == 0o600
    assert await connect_and_run(sshd_server) == "ok\n"

    trust_host_key(profile, info)  # trusting again adds nothing
    assert len(known_hosts_file().read_text().splitlines()) == 1


async def test_the_written_known_hosts_satisfies_openssh(sshd_server: SshServer) -> None:
    profile = sshd_server.profile("box")
    trust_host_key(profile, await fetch_host_key(profile))
    result = subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts_file()}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-i",
            str(sshd_server.key_path),
            "-p",
            str(sshd_server.port),
            f"{sshd_server.user}@{sshd_server.host}",
            "echo openssh-agrees",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "openssh-agrees\n"


async def test_key_from_the_users_known_hosts_is_trusted_and_not_copied(
    sshd_server: SshServer, ssh_dir: Path
) -> None:
    sshd_server.trust(ssh_dir / "known_hosts")
    assert await connect_and_run(sshd_server) == "ok\n"
    assert not known_hosts_file().exists()


async def test_hashed_entries_are_understood(sshd_server: SshServer, ssh_dir: Path) -> None:
    user_file = sshd_server.trust(ssh_dir / "known_hosts")
    subprocess.run(["ssh-keygen", "-H", "-f", str(user_file)], check=True, capture_output=True)
    assert user_file.read_text().startswith("|1|")
    assert await connect_and_run(sshd_server) == "ok\n"


async def test_an_entry_for_another_port_does_not_count(
    sshd_server: SshServer, sshd_server2: SshServer
) -> None:
    key = sshd_server.known_hosts_line().split(" ", 1)[1]
    known_hosts_file().write_text(f"127.0.0.1 {key}\n")  # port 22: a different host
    sshd_server2.trust()  # another port on the same address, another key
    with pytest.raises(HostKeyUnknown):
        await connect_and_run(sshd_server)


async def test_rotated_key_is_refused_as_changed(fresh_sshd: SshServer) -> None:
    profile = fresh_sshd.profile("box")
    trust_host_key(profile, await fetch_host_key(profile))
    assert await connect_and_run(fresh_sshd) == "ok\n"
    before = known_hosts_file().read_text()

    fresh_sshd.rotate_host_key()
    with pytest.raises(HostKeyChanged) as err:
        await connect_and_run(fresh_sshd)
    new_fingerprint = key_fingerprint(fresh_sshd.host_pub_path)
    assert err.value.fingerprint == new_fingerprint
    assert err.value.exit_code == 4
    assert "CHANGED" in str(err.value) and new_fingerprint in str(err.value)

    info = await fetch_host_key(profile)
    assert info.fingerprint == new_fingerprint
    assert key_status(profile, info) == "changed"
    with pytest.raises(HostKeyChanged):
        trust_host_key(profile, info)
    assert known_hosts_file().read_text() == before

    # Only after the person removes the old line can the new key be trusted.
    known_hosts_file().write_text("")
    trust_host_key(profile, info)
    assert await connect_and_run(fresh_sshd) == "ok\n"


async def test_a_key_of_another_kind_counts_as_changed(fresh_sshd: SshServer) -> None:
    other = fresh_sshd.root / "id_ecdsa"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(other)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    ecdsa_pub = other.with_name("id_ecdsa.pub").read_text().split()[:2]
    known_hosts_file().write_text(f"[127.0.0.1]:{fresh_sshd.port} {' '.join(ecdsa_pub)}\n")
    with pytest.raises(HostKeyChanged) as err:
        await connect_and_run(fresh_sshd)
    assert err.value.fingerprint == key_fingerprint(fresh_sshd.host_pub_path)


async def test_revoked_key_is_refused(sshd_server: SshServer) -> None:
    sshd_server.trust()
    with known_hosts_file().open("a") as f:
        f.write("@revoked " + sshd_server.known_hosts_line() + "\n")
    with pytest.raises(HostKeyChanged):
        await connect_and_run(sshd_server)


async def test_untrusted_jump_host_is_named_and_fetched_first(
    sshd_server: SshServer, sshd_server2: SshServer, ssh_dir: Path
) -> None:
    sshd_server.trust()
    (ssh_dir / "config").write_text(
        f"Host jumpbox\n  HostName {sshd_server2.host}\n  Port {sshd_server2.port}\n"
        f"  User {sshd_server2.user}\n  IdentityFile {sshd_server2.key_path}\n"
    )
    profile = sshd_server.profile("box", proxy_jump="jumpbox")
    with pytest.raises(HostKeyUnknown) as err:
        await connect_and_run(sshd_server, proxy_jump="jumpbox")
    assert err.value.host == "jumpbox"
    assert err.value.fingerprint == key_fingerprint(sshd_server2.host_pub_path)

    info = await fetch_host_key(profile)
    assert info.host == "jumpbox" and info.known_as == f"[127.0.0.1]:{sshd_server2.port}"
    trust_host_key(profile, info)
    assert await connect_and_run(sshd_server, proxy_jump="jumpbox") == "ok\n"


def test_trust_refuses_a_key_that_does_not_match_its_fingerprint(sshd_server: SshServer) -> None:
    key = " ".join(sshd_server.known_hosts_line().split()[1:])
    forged = HostKeyInfo("box", "ssh-ed25519", "SHA256:" + "A" * 43, public_key=key)
    with pytest.raises(Exception, match="does not match"):
        trust_host_key(sshd_server.profile("box"), forged)
    assert not known_hosts_file().exists()


def test_lookup_follows_openssh_patterns(tmp_path: Path, sshd_server: SshServer) -> None:
    key = " ".join(sshd_server.known_hosts_line().split()[1:])
    path = tmp_path / "known_hosts"
    path.write_text(
        "# comment\n"
        "\n"
        f"*.gpu.example,!bad.gpu.example {key}\n"
        f"[10.0.0.?]:2222 {key}\n"
        f"Plain.Example {key} a comment\n"
        "broken line\n"
    )
    found = [
        name
        for name in [
            "a.gpu.example",
            "bad.gpu.example",
            "[10.0.0.5]:2222",
            "[10.0.0.5]:22",
            "10.0.0.5",
            "plain.example",
            known_as("plain.example", 2200),
        ]
        if lookup(name, [path]).host_keys
    ]
    assert found == ["a.gpu.example", "[10.0.0.5]:2222", "plain.example"]


async def test_fetching_from_a_host_that_does_not_answer(sshd_server: SshServer) -> None:
    with pytest.raises(HostUnreachable, match="connection refused"):
        await fetch_host_key(sshd_server.profile("box", port=free_port()))
