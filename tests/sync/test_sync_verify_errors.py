"""--verify (hashes on both ends, a mismatch found and reported) and the failures a person must
understand at a glance: full disk, permission denied, unreachable host."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd import SshServer, free_port
from sync_helpers import SMALL_LIMIT, leftovers, make_tree, snapshot, sync

from transfer.errors import HostUnreachable
from transfer.hosts import HostProfile
from transfer.sync.errors import NoSpaceLeft, PermissionDeniedError

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small filesystem needs root")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: the destination that fills up."""
    mount = tmp_path / "tiny disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def stand_in(server: SshServer, name: str, body: str) -> None:
    """A program put first on the host's PATH (the test sshd's bin folder)."""
    path = server.bin_dir / name
    path.write_text(body)
    path.chmod(0o755)


async def test_verify_hashes_both_ends_and_repairs_a_mismatch(
    box: HostProfile, tmp_path: Path
) -> None:
    source, remote = tmp_path / "src", tmp_path / "remote"
    make_tree(source)
    first = await sync(box, "push", source, remote, verify=True)
    files = [rel for rel, v in snapshot(source).items() if v[0] == "f"]
    assert first.ok and first.hash_name == "sha256" and first.verified == len(files)

    damaged = remote / "a b" / "ünï" / "-c" / "deep file"
    stat = damaged.stat()
    damaged.write_bytes(b"DEEP\n")  # same size; same mtime below: the quick check is fooled
    os.utime(damaged, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (await sync(box, "push", source, remote)).files_sent == 0

    checked = await sync(box, "push", source, remote, verify=True)
    assert checked.repaired == ["a b/ünï/-c/deep file"]
    assert checked.ok and checked.mismatches == []
    assert damaged.read_bytes() == b"deep\n"


async def test_verify_reports_what_stays_different(fresh_sshd: SshServer, tmp_path: Path) -> None:
    fresh_sshd.trust()
    host = fresh_sshd.profile("box")
    # A host whose sha256sum lies: every digest comes back altered.
    stand_in(
        fresh_sshd,
        "sha256sum",
        "#!/bin/sh\n/usr/bin/sha256sum \"$@\" | sed -e 's/^0/f/;t' -e 's/^./0/'\n",
    )
    source, remote = tmp_path / "src", tmp_path / "remote"
    source.mkdir()
    (source / "a.txt").write_bytes(b"alpha")
    (source / "b.bin").write_bytes(os.urandom(SMALL_LIMIT * 2))
    result = await sync(host, "push", source, remote, verify=True)
    assert not result.ok
    assert sorted(m.path for m in result.mismatches) == ["a.txt", "b.bin"]
    mismatch = result.mismatches[0]
    assert mismatch.source_hash != mismatch.destination_hash
    assert len(mismatch.source_hash) == 64


async def test_verify_uses_xxh128_when_the_host_has_it(
    fresh_sshd: SshServer, tmp_path: Path
) -> None:
    fresh_sshd.trust()
    host = fresh_sshd.profile("box")
    stand_in(
        fresh_sshd,
        "xxh128sum",
        f"#!{sys.executable}\n"
        "import sys, xxhash\n"
        "for name in sys.argv[1:]:\n"
        "    if name == '--': continue\n"
        "    with open(name, 'rb') as f: digest = xxhash.xxh128(f.read()).hexdigest()\n"
        "    shown = name.replace('\\\\', '\\\\\\\\').replace('\\n', '\\\\n')\n"
        "    print(('\\\\' if shown != name else '') + digest + '  ' + shown)\n",
    )
    source, remote = tmp_path / "src", tmp_path / "remote"
    make_tree(source)
    result = await sync(host, "push", source, remote, verify=True)
    files = [rel for rel, v in snapshot(source).items() if v[0] == "f"]
    assert result.ok, (result.mismatches, result.problems)
    assert result.hash_name == "xxh128" and result.verified == len(files)


async def test_pull_verify_compares_the_same_files(box: HostProfile, tmp_path: Path) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    make_tree(remote)
    result = await sync(box, "pull", local, remote, verify=True)
    assert result.ok and result.verified == sum(
        1 for v in snapshot(remote).values() if v[0] == "f"
    )


@needs_root
async def test_full_disk_on_the_host_is_one_clear_error(
    box: HostProfile, tmp_path: Path, tiny_disk: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    with pytest.raises(NoSpaceLeft) as caught:
        await sync(box, "push", source, tiny_disk)
    assert str(caught.value) == f"no space left on box:{tiny_disk}/big.bin"
    assert not (tiny_disk / "big.bin").exists()

    many = tmp_path / "many"
    many.mkdir()
    for index in range(60):
        (many / f"f{index:02d}").write_bytes(os.urandom(30_000))
    target = tiny_disk / "tree"
    with pytest.raises(NoSpaceLeft) as caught:
        await sync(box, "push", many, target, small_file_limit=SMALL_LIMIT)
    assert str(caught.value) == f"no space left on box:{target}"
    # The batch was staged: nothing half-written at a final name, and the stage is gone.
    assert not any(target.glob("f*"))
    assert [p for p in leftovers(tiny_disk) if "gputui-stage" in p] == []


@needs_root
async def test_full_disk_here_is_one_clear_error(
    box: HostProfile, tmp_path: Path, tiny_disk: Path
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "ckpt.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    with pytest.raises(NoSpaceLeft, match=r"^no space left on local:"):
        await sync(box, "pull", tiny_disk, remote)
    assert not (tiny_disk / "ckpt.bin").exists()


@contextlib.contextmanager
def refusing(path: Path) -> Iterator[None]:
    """A folder that refuses new entries with a real EPERM/EACCES from the kernel.

    root writes through any mode bits, so as root the folder is made immutable (``chattr +i``:
    even root gets "Operation not permitted"); as anyone else, plain mode bits do it.
    """
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o555)
    try:
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o755)


async def test_permission_denied_names_the_place(box: HostProfile, tmp_path: Path) -> None:
    source, remote = tmp_path / "src", tmp_path / "remote"
    source.mkdir()
    (source / "a.txt").write_bytes(b"a")
    (source / "big.bin").write_bytes(os.urandom(SMALL_LIMIT * 2))
    remote.mkdir()
    with refusing(remote), pytest.raises(PermissionDeniedError) as caught:
        await sync(box, "push", source, remote)
    message = str(caught.value)
    assert message.startswith(f"permission denied on box:{remote}")
    assert "\n" not in message and ".part" not in message
    assert list(remote.iterdir()) == []


async def test_permission_denied_here_names_the_place(box: HostProfile, tmp_path: Path) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    remote.mkdir()
    (remote / "a.txt").write_bytes(b"a")
    (remote / "big.bin").write_bytes(os.urandom(SMALL_LIMIT * 2))
    local.mkdir()
    with refusing(local), pytest.raises(PermissionDeniedError) as caught:
        await sync(box, "pull", local, remote)
    message = str(caught.value)
    assert message.startswith(f"permission denied on local:{local}")
    assert "\n" not in message and ".part" not in message
    assert list(local.iterdir()) == []


async def test_unreachable_host(tmp_path: Path) -> None:
    host = HostProfile(name="gone", hostname="127.0.0.1", port=free_port(), user="nobody")
    with pytest.raises(HostUnreachable, match="cannot reach gone"):
        await sync(host, "push", tmp_path, "x")


async def test_permission_denied_mid_stream_is_still_named(
    box: HostProfile, tmp_path: Path
) -> None:
    """A file much bigger than what a channel takes in flight: the refused command has ended
    long before the last write, and the error still says what the host said, not a broken
    pipe."""
    source, remote = tmp_path / "src", tmp_path / "remote"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(48 << 20))
    remote.mkdir()
    with refusing(remote), pytest.raises(PermissionDeniedError) as caught:
        await sync(box, "push", source, remote)
    assert str(caught.value).startswith(f"permission denied on box:{remote}")
    assert list(remote.iterdir()) == []
