"""Host certificates and ``@revoked`` against a real sshd presenting an ``ssh-keygen -s`` cert.

OpenSSH's rules are the reference: a key or CA marked ``@revoked`` is refused whatever else
trusts it; a certificate from a CA that no ``@cert-authority`` line trusts is judged by its plain
key, so a host never seen before is unknown (not changed), shown with both fingerprints.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sshd import SshServer, generate_key, key_fingerprint

from transfer.connect import open_link
from transfer.errors import HostKeyChanged, HostKeyUnknown
from transfer.hostkeys import fetch_host_key, key_status, trust_host_key
from transfer.paths import known_hosts_file


def pub_line(path: Path) -> str:
    """``type base64`` of a public key file."""
    return " ".join(path.with_name(path.name + ".pub").read_text().split()[:2])


@pytest.fixture
def ca_key(tmp_path: Path) -> Path:
    return generate_key(tmp_path / "ca" / "host_ca", comment="gputui-test-ca")


@pytest.fixture
def certified(fresh_sshd: SshServer, ca_key: Path) -> SshServer:
    """A host whose key is certified by ``ca_key`` for its address."""
    fresh_sshd.certify_host_key(ca_key)
    return fresh_sshd


def known_as(server: SshServer) -> str:
    return f"[{server.host}]:{server.port}"


def write_known_hosts(*lines: str) -> None:
    known_hosts_file().write_text("".join(line + "\n" for line in lines))


async def connect_and_run(server: SshServer) -> str:
    async with open_link(server.profile("box")) as link:
        return (await link.run("echo ok", check=True)).stdout


def ca_fingerprint(ca_key: Path) -> str:
    return key_fingerprint(ca_key.with_name(ca_key.name + ".pub"))


async def test_a_revoked_ca_refuses_the_host_it_certified(
    certified: SshServer, ca_key: Path
) -> None:
    write_known_hosts(f"@cert-authority {known_as(certified)} {pub_line(ca_key)}")
    assert await connect_and_run(certified) == "ok\n"  # the CA alone is enough

    write_known_hosts(
        f"@cert-authority {known_as(certified)} {pub_line(ca_key)}",
        f"@revoked * {pub_line(ca_key)}",
    )
    with pytest.raises(HostKeyChanged) as err:
        await connect_and_run(certified)
    message = str(err.value)
    assert "revoked" in message and ca_fingerprint(ca_key) in message
    assert "\n" not in message and err.value.exit_code == 4

    profile = certified.profile("box")
    info = await fetch_host_key(profile)
    assert key_status(profile, info) == "revoked"
    with pytest.raises(HostKeyChanged, match="revoked"):
        trust_host_key(profile, info)  # trusting its plain key instead is refused too
    assert "@revoked" in known_hosts_file().read_text()
    assert len(known_hosts_file().read_text().splitlines()) == 2


async def test_a_revoked_certified_host_key_is_refused_though_its_ca_is_trusted(
    certified: SshServer, ca_key: Path
) -> None:
    write_known_hosts(
        f"@cert-authority {known_as(certified)} {pub_line(ca_key)}",
        f"@revoked {known_as(certified)} {pub_line(certified.host_key_paths[0])}",
    )
    with pytest.raises(HostKeyChanged) as err:
        await connect_and_run(certified)
    message = str(err.value)
    assert "revoked" in message and certified.host_key_fingerprint() in message
    assert "\n" not in message

    profile = certified.profile("box")
    info = await fetch_host_key(profile)
    assert key_status(profile, info) == "revoked"
    with pytest.raises(HostKeyChanged):
        trust_host_key(profile, info)


async def test_a_revoked_plain_key_says_revoked_not_changed(fresh_sshd: SshServer) -> None:
    line = fresh_sshd.known_hosts_line()
    write_known_hosts(line, "@revoked " + line)
    with pytest.raises(HostKeyChanged) as err:
        await connect_and_run(fresh_sshd)
    assert "revoked" in str(err.value) and "CHANGED" not in str(err.value)
    assert err.value.fingerprint == fresh_sshd.host_key_fingerprint()


async def test_a_certificate_from_an_untrusted_ca_is_unknown_with_both_fingerprints(
    certified: SshServer, ca_key: Path
) -> None:
    with pytest.raises(HostKeyUnknown) as err:
        await connect_and_run(certified)
    host_fp, ca_fp = certified.host_key_fingerprint(), ca_fingerprint(ca_key)
    assert err.value.fingerprint == host_fp and err.value.ca_fingerprint == ca_fp
    assert host_fp in str(err.value) and ca_fp in str(err.value)
    assert "CHANGED" not in str(err.value)

    profile = certified.profile("box")
    info = await fetch_host_key(profile)
    assert (info.fingerprint, info.ca_fingerprint) == (host_fp, ca_fp)
    assert key_status(profile, info) == "unknown"
    trust_host_key(profile, info)  # what is stored is the host key itself
    assert known_hosts_file().read_text() == certified.known_hosts_line() + "\n"
    assert await connect_and_run(certified) == "ok\n"


async def test_a_changed_key_is_refused_even_when_certified_by_an_unknown_ca(
    certified: SshServer, ca_key: Path, tmp_path: Path
) -> None:
    """The host was known by another key (of a kind it no longer has): a certificate from an
    unknown CA does not make its new key merely unknown."""
    old_key = tmp_path / "old_ecdsa"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(old_key)],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
    )
    write_known_hosts(f"{known_as(certified)} {pub_line(old_key)}")
    with pytest.raises(HostKeyChanged) as err:
        await connect_and_run(certified)
    assert "CHANGED" in str(err.value) and "\n" not in str(err.value)
    assert err.value.fingerprint == certified.host_key_fingerprint()
    assert err.value.ca_fingerprint == ca_fingerprint(ca_key)
    profile = certified.profile("box")
    assert key_status(profile, await fetch_host_key(profile)) == "changed"


async def test_a_trusted_ca_certifies_a_new_key(fresh_sshd: SshServer, ca_key: Path) -> None:
    """A rebuilt host with a fresh certificate from the trusted CA needs no new trust."""
    write_known_hosts(f"@cert-authority {known_as(fresh_sshd)} {pub_line(ca_key)}")
    fresh_sshd.certify_host_key(ca_key)
    profile = fresh_sshd.profile("box")
    info = await fetch_host_key(profile)
    assert info.ca_fingerprint == ca_fingerprint(ca_key)
    assert key_status(profile, info) == "trusted"
    fresh_sshd.rotate_host_key()
    fresh_sshd.certify_host_key(ca_key)
    assert await connect_and_run(fresh_sshd) == "ok\n"
