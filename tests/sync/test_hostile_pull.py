"""A pull from a host that lies: its ``find``, ``tar`` and ``cat`` send traversal entries, type-
swapped tar members, names under a link and setuid modes; another local user plants links in a
world-writable pulled folder. Nothing lands outside the destination or behind a link, and modes
arrive sanitised."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile import as_user, plant, python_filter, real_program, wrap
from sshd import SshServer
from sync_helpers import SMALL_LIMIT, sync

from transfer.errors import GputuiError
from transfer.hosts import HostProfile

MTIME = 1_700_000_000


@pytest.fixture
def evil(fresh_sshd: SshServer) -> HostProfile:
    fresh_sshd.trust()
    return fresh_sshd.profile("evil")


def listing_adds(server: SshServer, *records: tuple[str, int, str, int, str]) -> None:
    """The host's ``find`` also reports these ``(kind, size, mode, mtime, path)`` records."""
    extra = b"".join(
        b"%s %d %d.0 %s %s\0\0" % (k.encode(), size, mtime, mode.encode(), os.fsencode(path))
        for k, size, mode, mtime, path in records
    )
    wrap(server, "find", python_filter(f"out = data + {extra!r} if data else data"))


def record_of(path: Path, listed_as: str, mode: str = "644") -> tuple[str, int, str, int, str]:
    st = path.stat()
    return ("f", st.st_size, mode, int(st.st_mtime), listed_as)


def old_part_name(name: str, size: int, mtime: int) -> str:
    """The ``.part`` name the pull used to pick for a file: predictable from the listing."""
    digest = hashlib.sha1(f"{name}\0{size}\0{mtime}".encode()).hexdigest()[:12]
    return f".{name}.{digest}.part"


@pytest.mark.parametrize(
    "entry",
    [
        ("d", 0, "755", MTIME, "../../made-outside"),
        ("f", 3 * SMALL_LIMIT, "644", MTIME, "../../outside.bin"),
        ("f", 5, "644", MTIME, "../../outside.txt"),
        ("d", 0, "755", MTIME, "sub/../../../made-outside"),
        ("f", 5, "644", MTIME, "/abs/outside.txt"),
        ("f", 5, "644", MTIME, "sub//x"),
    ],
)
async def test_listing_entries_outside_the_destination_refuse_the_pull(
    evil: HostProfile, fresh_sshd: SshServer, tmp_path: Path,
    entry: tuple[str, int, str, int, str],
) -> None:
    remote, dest = tmp_path / "host" / "a" / "remote", tmp_path / "mine" / "a" / "dest"
    (remote / "sub").mkdir(parents=True)
    (remote / "sub" / "ok.txt").write_bytes(b"fine\n")
    dest.parent.mkdir(parents=True)
    outside_bin = tmp_path / "host" / "outside.bin"  # what the host's cat reads for ../../
    outside_bin.write_bytes(os.urandom(3 * SMALL_LIMIT))
    os.utime(outside_bin, (MTIME, MTIME))
    (tmp_path / "host" / "outside.txt").write_bytes(b"evil\n")
    os.utime(tmp_path / "host" / "outside.txt", (MTIME, MTIME))
    listing_adds(fresh_sshd, entry)
    with pytest.raises(GputuiError) as refused:
        await sync(evil, "pull", dest, remote)
    message = str(refused.value)
    assert "\n" not in message and "evil" in message and "unsafe" in message
    assert sorted(p.name for p in (tmp_path / "mine").rglob("*")) == ["a"], "wrote outside"
    assert not Path("/abs/outside.txt").exists()


async def test_a_name_under_a_link_of_an_earlier_pull_is_refused(
    evil: HostProfile, fresh_sshd: SshServer, tmp_path: Path
) -> None:
    remote, dest = tmp_path / "host" / "a" / "remote", tmp_path / "mine" / "a" / "dest"
    remote.mkdir(parents=True)
    os.symlink("../../vd", remote / "d")  # on this machine: tmp/mine/vd, on the host tmp/host/vd
    (tmp_path / "host" / "vd").mkdir()
    (tmp_path / "host" / "vd" / "x").write_bytes(b"from the host\n")
    (tmp_path / "host" / "vd" / "big.bin").write_bytes(os.urandom(2 * SMALL_LIMIT))
    victim = tmp_path / "mine" / "vd"
    victim.mkdir(parents=True)
    (victim / "x").write_bytes(b"precious\n")
    first = await sync(evil, "pull", dest, remote)
    assert first.ok and os.readlink(dest / "d") == "../../vd"

    listing_adds(
        fresh_sshd,
        record_of(tmp_path / "host" / "vd" / "x", "d/x"),
        record_of(tmp_path / "host" / "vd" / "big.bin", "d/big.bin"),
    )
    with pytest.raises(GputuiError, match="evil"):
        await sync(evil, "pull", dest, remote)
    assert (victim / "x").read_bytes() == b"precious\n"
    assert sorted(p.name for p in victim.iterdir()) == ["x"]


def type_swapping_tar(to_link: str | None) -> str:
    """A host ``tar`` that sends every asked-for name as a link to ``to_link`` (or, with None,
    as a regular file)."""
    return (
        f"#!{real_program('python3')}\n"
        "import io, sys, tarfile\n"
        "names = [n for n in sys.stdin.buffer.read().split(b'\\0') if n]\n"
        "with tarfile.open(fileobj=sys.stdout.buffer, mode='w|', format=tarfile.GNU_FORMAT) as t:\n"
        "    for name in names:\n"
        "        info = tarfile.TarInfo(name.decode('utf-8', 'surrogateescape'))\n"
        f"        if {to_link!r} is not None:\n"
        f"            info.type, info.linkname = tarfile.SYMTYPE, {to_link!r}\n"
        "            t.addfile(info)\n"
        "        else:\n"
        "            data = b'a regular file\\n'\n"
        "            info.size = len(data)\n"
        "            t.addfile(info, io.BytesIO(data))\n"
    )


@pytest.mark.parametrize("listed_kind", ["f", "l"])
async def test_a_tar_member_of_another_type_than_listed_is_refused(
    evil: HostProfile, fresh_sshd: SshServer, tmp_path: Path, listed_kind: str
) -> None:
    remote, dest = tmp_path / "remote", tmp_path / "dest"
    remote.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    if listed_kind == "f":
        (remote / "item").write_bytes(b"listed as a file\n")
        plant(fresh_sshd, "tar", type_swapping_tar(str(victim)))
    else:
        os.symlink("somewhere", remote / "item")
        plant(fresh_sshd, "tar", type_swapping_tar(None))
    with pytest.raises(GputuiError, match="evil") as refused:
        await sync(evil, "pull", dest, remote)
    assert "\n" not in str(refused.value)
    assert not os.path.lexists(dest / "item")
    assert victim.read_bytes() == b"precious\n"


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder that a second local user can reach (pytest's own tmp folder is private)."""
    base = Path(tempfile.mkdtemp(prefix="gputui-shared-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def test_links_another_user_plants_in_a_world_writable_folder_are_not_followed(
    evil: HostProfile, tmp_path: Path, shared_folder: Path, other_user: pwd.struct_passwd
) -> None:
    remote, dest = tmp_path / "remote", shared_folder / "dest"
    (remote / "pub").mkdir(parents=True)
    (remote / "pub").chmod(0o777)
    files = {
        "small.txt": b"small from the host\n",
        "big.bin": os.urandom(3 * SMALL_LIMIT),
        "later.txt": b"pulled later\n",
    }
    for name, data in files.items():
        (remote / "pub" / name).write_bytes(data)
        os.utime(remote / "pub" / name, (MTIME, MTIME))
    (dest / "pub").mkdir(parents=True)
    (dest / "pub").chmod(0o777)  # world-writable, as an earlier pull brought it
    victims = {}
    for name in ("small", "big", "later"):
        victims[name] = shared_folder / f"root-owned-{name}"
        victims[name].write_bytes(b"root's own\n")
        victims[name].chmod(0o600)
    planted = {
        old_part_name("small.txt", len(files["small.txt"]), MTIME): victims["small"],
        old_part_name("big.bin", len(files["big.bin"]), MTIME): victims["big"],
        "later.txt": victims["later"],
    }
    for name, target in planted.items():
        as_user(other_user, "ln", "-s", str(target), str(dest / "pub" / name))

    result = await sync(evil, "pull", dest, remote)
    for victim in victims.values():
        st = victim.lstat()
        assert victim.read_bytes() == b"root's own\n", victim
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, 0), victim
    assert result.ok, result.problems
    for name, data in files.items():
        assert not (dest / "pub" / name).is_symlink()
        assert (dest / "pub" / name).read_bytes() == data


@pytest.mark.parametrize("umask", [0o022, 0o027])
async def test_host_modes_are_sanitised(evil: HostProfile, tmp_path: Path, umask: int) -> None:
    remote, dest = tmp_path / "remote", tmp_path / "dest"
    modes = {
        "open": 0o777,
        "sticky": 0o1777,
        "setgid-locked": 0o2555,
        "open/suid.sh": 0o4755,
        "open/group-writable.txt": 0o666,
        "big-suid.bin": 0o6755,
    }
    for rel in modes:
        path = remote / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if "." in rel:
            path.write_bytes(os.urandom(2 * SMALL_LIMIT) if rel.startswith("big") else b"#!x\n")
        else:
            path.mkdir()
    for rel, mode in sorted(modes.items(), reverse=True):
        (remote / rel).chmod(mode)
    old = os.umask(umask)
    try:
        result = await sync(evil, "pull", dest, remote)
        again = await sync(evil, "pull", dest, remote)
    finally:
        os.umask(old)
    assert result.ok, result.problems
    got = {rel: stat.S_IMODE((dest / rel).stat().st_mode) for rel in modes}
    assert got == {rel: mode & 0o777 & ~umask for rel, mode in modes.items()}
    assert again.ok and again.files_sent == 0
