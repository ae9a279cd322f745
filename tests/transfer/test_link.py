"""Every Link operation, over a real sshd and on this machine, with the same expectations.

Both links reach the same filesystem here (the sshd runs on 127.0.0.1), so each test prepares
and checks files with plain ``os`` calls and only exercises the operation under test through
the link.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shlex
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sshd import SshServer, free_port, generate_key

from transfer.connect import open_link
from transfer.errors import (
    AuthenticationFailed,
    GputuiError,
    HostUnreachable,
    LinkLost,
    RemoteCommandFailed,
    RemoteFileError,
)
from transfer.hosts import HostProfile, HostStore, local_host
from transfer.link import Link
from transfer.local_link import LocalLink
from transfer.ssh_link import SSHLink

AWKWARD_NAMES = [
    "with space.txt",
    "new\nline",
    "ünïcødé-数据.bin",
    "-leading-dash",
    "--",
    "quote'and\"double",
    "$(touch pwned)",
]


@pytest.fixture(params=["local", "ssh"])
async def link(request: pytest.FixtureRequest) -> AsyncIterator[Link]:
    if request.param == "local":
        opened = open_link(local_host())
        assert isinstance(opened, LocalLink)
    else:
        server: SshServer = request.getfixturevalue("sshd_server")
        server.trust()
        opened = open_link(server.profile("box"))
        assert isinstance(opened, SSHLink)
    async with opened:
        yield opened


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


async def trusted_ssh_link(server: SshServer, **fields: object) -> SSHLink:
    server.trust()
    link = open_link(server.profile("box", **fields))
    assert isinstance(link, SSHLink)
    await link.connect()
    return link


# -- commands ---------------------------------------------------------------------------------
async def test_run_returns_exit_status_stdout_and_stderr(link: Link) -> None:
    result = await link.run("echo out; echo err >&2; exit 7")
    assert (result.exit_status, result.stdout, result.stderr) == (7, "out\n", "err\n")
    assert not result.ok


async def test_run_feeds_input_and_keeps_bytes_exact(link: Link) -> None:
    data = "line one\nzwei – drei\n".encode() * 1000
    result = await link.run("wc -c; cat >/dev/null", input=data)
    assert result.stdout.strip() == str(len(data))
    echoed = await link.run("cat", input=data)
    assert echoed.stdout.encode() == data


async def test_run_without_input_sees_end_of_input(link: Link) -> None:
    result = await link.run("cat; echo done", timeout=10)
    assert result.stdout == "done\n"


async def test_run_uses_posix_sh(link: Link) -> None:
    result = await link.run('x=1; [ "$x" = 1 ] && printf "%s" "$0"')
    assert result.stdout in ("sh", "/bin/sh")


async def test_check_raises_with_the_last_stderr_line(link: Link) -> None:
    with pytest.raises(RemoteCommandFailed, match=r"exited 3: second"):
        await link.run("echo first >&2; echo second >&2; exit 3", check=True)


async def test_run_timeout_raises_and_stops_the_command(link: Link, work: Path) -> None:
    marker = work / "still-running"
    command = f"sleep 1.6 && touch {shlex.quote(str(marker))}"
    start = time.monotonic()
    with pytest.raises(RemoteCommandFailed, match=r"did not finish within 0\.3 s"):
        await link.run(f"exec sh -c {shlex.quote(command)}", timeout=0.3)
    assert time.monotonic() - start < 1.5
    await asyncio.sleep(max(0.0, start + 2.2 - time.monotonic()))
    assert not marker.exists()


async def test_stream_yields_each_line_as_it_is_written(link: Link, work: Path) -> None:
    go = work / "go"
    command = (
        f"echo first; while [ ! -e {shlex.quote(str(go))} ]; do sleep 0.02; done; "
        "printf 'second\\nlast without newline'"
    )
    lines = link.stream(command)
    assert await asyncio.wait_for(anext(lines), 10) == "first"
    go.touch()
    rest = [line async for line in lines]
    assert rest == ["second", "last without newline"]


async def test_stream_raises_when_the_command_fails(link: Link) -> None:
    received = []
    with pytest.raises(RemoteCommandFailed, match="exited 4: broken"):
        async for line in link.stream("echo partial; echo broken >&2; exit 4"):
            received.append(line)
    assert received == ["partial"]


async def test_leaving_a_stream_early_stops_the_command(link: Link, work: Path) -> None:
    count = work / "count"
    command = (
        f"i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo $i; echo $i >> {count}; sleep 0.02; done"
    )
    async for line in link.stream(command):
        if line == "3":
            break
    await asyncio.sleep(0.5)
    seen = len(count.read_text().splitlines())
    await asyncio.sleep(0.3)
    assert len(count.read_text().splitlines()) == seen < 100


# -- files ------------------------------------------------------------------------------------
async def test_home_and_expand(link: Link) -> None:
    user = pwd.getpwuid(os.getuid()).pw_name
    expected = os.environ["HOME"] if isinstance(link, LocalLink) else pwd.getpwnam(user).pw_dir
    home = await link.home()
    assert home == expected
    assert await link.expand("~") == home
    assert await link.expand("~/gputui/run 1") == f"{home}/gputui/run 1"
    assert await link.expand("/abs/~/x") == "/abs/~/x"
    assert (await link.stat("~")).is_dir


async def test_stat_file_folder_and_symlink(link: Link, work: Path) -> None:
    target = work / "data.bin"
    target.write_bytes(b"x" * 1234)
    os.utime(target, (1_700_000_000, 1_700_000_000))
    (work / "folder").mkdir()
    (work / "link").symlink_to(target)

    st = await link.stat(str(target))
    assert (st.size, st.is_dir, st.is_symlink, int(st.mtime)) == (1234, False, False, 1_700_000_000)
    assert st.mode == os.stat(target).st_mode
    assert (await link.stat(str(work / "folder"))).is_dir
    followed = await link.stat(str(work / "link"))
    assert (followed.size, followed.is_symlink) == (1234, False)
    assert (await link.stat(str(work / "link"), follow_symlinks=False)).is_symlink


async def test_missing_path_raises_file_not_found_that_is_a_gputui_error(
    link: Link, work: Path
) -> None:
    missing = str(work / "nope")
    with pytest.raises(FileNotFoundError) as err:
        await link.stat(missing)
    assert isinstance(err.value, GputuiError)
    assert "no such file or folder" in str(err.value) and missing in str(err.value)
    assert not await link.exists(missing)
    with pytest.raises(FileNotFoundError):
        await link.read_bytes(missing)
    with pytest.raises(FileNotFoundError):
        await link.listdir(missing)


async def test_listdir_gives_sorted_names_without_dots(link: Link, work: Path) -> None:
    for name in ("b", "a", ".hidden"):
        (work / name).write_text(name)
    (work / "sub").mkdir()
    assert await link.listdir(str(work)) == [".hidden", "a", "b", "sub"]
    assert await link.listdir(str(work / "sub")) == []


async def test_write_and_read_at_offsets(link: Link, work: Path) -> None:
    path = str(work / "file.bin")
    async with await link.open(path, "wb") as f:
        assert await f.write(b"hello world") == 11
        await f.write(b"HELLO", offset=0)
        await f.write(b"!")  # continues after the last write at offset 0
    assert Path(path).read_bytes() == b"HELLO!world"

    async with await link.open(path, "r+b") as f:
        await f.write(b"__", offset=13)  # past the end: a hole of zeros
        assert await f.read(5, offset=6) == b"world"
        assert await f.read(3) == b"\0\0_"  # continues after the last read
        assert await f.read(offset=4) == b"O!world\0\0__"
    assert Path(path).read_bytes() == b"HELLO!world\0\0__"

    async with await link.open(path, "ab") as f:
        await f.write(b"+tail", offset=0)  # appending ignores the offset
    assert Path(path).read_bytes() == b"HELLO!world\0\0__+tail"

    async with await link.open(path, "wb") as f:
        await f.write(b"new")
    assert await link.read_bytes(path) == b"new"


async def test_large_file_round_trip(link: Link, work: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = str(work / "big.bin")
    await link.write_bytes(path, data)
    assert Path(path).read_bytes() == data
    assert await link.read_bytes(path) == data


async def test_rename_replaces_an_existing_file(link: Link, work: Path) -> None:
    (work / "new").write_text("new")
    (work / "old").write_text("old")
    await link.rename(str(work / "new"), str(work / "old"))
    assert sorted(os.listdir(work)) == ["old"]
    assert (work / "old").read_text() == "new"


async def test_mkdir_with_parents_and_exist_ok(link: Link, work: Path) -> None:
    deep = work / "a" / "b" / "c"
    await link.mkdir(str(deep))
    assert deep.is_dir()
    await link.mkdir(str(deep))  # exists: fine by default
    with pytest.raises(RemoteFileError, match="already exists"):
        await link.mkdir(str(deep), exist_ok=False)
    with pytest.raises(RemoteFileError):
        await link.mkdir(str(work / "x" / "y"), parents=False)
    (work / "file").write_text("")
    with pytest.raises(RemoteFileError, match="already exists"):
        await link.mkdir(str(work / "file"))
    await link.mkdir(str(work / "single"), parents=False)
    assert (work / "single").is_dir()


async def test_remove_file_symlink_and_empty_folder(link: Link, work: Path) -> None:
    (work / "f").write_text("x")
    (work / "d").mkdir()
    (work / "l").symlink_to(work / "d")
    (work / "full").mkdir()
    (work / "full" / "inside").write_text("x")
    for name in ("f", "l", "d"):
        await link.remove(str(work / name))
    assert sorted(os.listdir(work)) == ["full"]
    with pytest.raises(RemoteFileError):
        await link.remove(str(work / "full"))
    with pytest.raises(FileNotFoundError):
        await link.remove(str(work / "f"))


@pytest.mark.parametrize("name", AWKWARD_NAMES, ids=repr)
async def test_awkward_names_survive_every_operation(link: Link, work: Path, name: str) -> None:
    folder = work / f"dir {name}"
    await link.mkdir(str(folder))
    path = str(folder / name)
    await link.write_bytes(path, name.encode())
    assert await link.listdir(str(folder)) == [name]
    assert (await link.stat(path)).size == len(name.encode())
    result = await link.run(f"cat -- {shlex.quote(path)}", check=True)
    assert result.stdout == name
    moved = str(folder / f"{name}.moved")
    await link.rename(path, moved)
    assert await link.read_bytes(moved) == name.encode()
    await link.remove(moved)
    await link.remove(str(folder))
    assert os.listdir(work) == []
    assert not Path(await link.home(), "pwned").exists()


async def test_error_messages_are_one_line(link: Link, work: Path) -> None:
    with pytest.raises(GputuiError) as err:
        await link.stat(str(work / "no\nsuch"))
    assert "\n" not in str(err.value)


# -- SSH only: reconnects, failures to connect, authentication, jump hosts ----------------------
async def test_reconnects_after_the_server_drops_the_connection(sshd_server: SshServer) -> None:
    link = await trusted_ssh_link(sshd_server)
    try:
        assert (await link.run("echo one")).stdout == "one\n"
        first = link.connection
        sshd_server.kill_connections()
        assert (await link.run("echo two")).stdout == "two\n"
        assert link.reconnects == 1 and link.connection is not first
        sshd_server.kill_connections()
        assert (await link.stat("/")).is_dir  # SFTP comes back too
        assert link.reconnects == 2
    finally:
        await link.close()


async def test_a_drop_during_a_command_is_not_run_twice(sshd_server: SshServer, work: Path) -> None:
    link = await trusted_ssh_link(sshd_server)
    counter = work / "runs"
    try:
        running = asyncio.ensure_future(link.run(f"echo x >> {counter}; sleep 5"))
        while not counter.exists():
            await asyncio.sleep(0.02)
        sshd_server.kill_connections()
        with pytest.raises(LinkLost, match="dropped"):
            await asyncio.wait_for(running, 10)
        assert counter.read_text() == "x\n"
        assert (await link.run("echo back")).stdout == "back\n"
    finally:
        await link.close()


async def test_gives_up_with_link_lost_while_the_host_stays_down(fresh_sshd: SshServer) -> None:
    link = await trusted_ssh_link(fresh_sshd)
    link.backoff = link.backoff.tuned(deadline_s=1.5)
    try:
        await link.run("true")
        fresh_sshd.stop()
        start = time.monotonic()
        with pytest.raises(LinkLost, match=r"could not restore it within 1\.5 s"):
            await link.run("true")
        assert time.monotonic() - start < 5
        fresh_sshd.start()
        assert (await link.run("echo up")).stdout == "up\n"
    finally:
        await link.close()


async def test_unreachable_port_fails_fast_with_host_unreachable() -> None:
    port = free_port()
    host = HostProfile(name="gone", hostname="127.0.0.1", port=port, user="root")
    start = time.monotonic()
    with pytest.raises(HostUnreachable) as err:
        async with open_link(host):
            pass
    assert time.monotonic() - start < 2
    assert str(err.value).startswith(f"cannot reach gone (root@127.0.0.1:{port}): ")
    assert "refused" in str(err.value)


async def test_wrong_key_fails_naming_the_key_file(sshd_server: SshServer, tmp_path: Path) -> None:
    sshd_server.trust()
    wrong = generate_key(tmp_path / "keys" / "id_wrong")
    with pytest.raises(AuthenticationFailed) as err:
        async with open_link(sshd_server.profile("box", identity_file=str(wrong))):
            pass
    assert str(wrong) in str(err.value)
    assert "refused every key" in str(err.value)


async def test_missing_key_file_is_named(sshd_server: SshServer, tmp_path: Path) -> None:
    sshd_server.trust()
    missing = tmp_path / "no-such-key"
    with pytest.raises(AuthenticationFailed, match=f"identity file {missing} does not exist"):
        async with open_link(sshd_server.profile("box", identity_file=str(missing))):
            pass


async def test_passphrase_key_without_agent_says_to_load_it(
    sshd_server: SshServer, tmp_path: Path
) -> None:
    sshd_server.trust()
    locked = tmp_path / "id_locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret words", "-f", str(locked)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    with pytest.raises(
        AuthenticationFailed, match=f"load it into ssh-agent \\(ssh-add {locked}\\)"
    ):
        async with open_link(sshd_server.profile("box", identity_file=str(locked))):
            pass


async def test_passphrase_key_held_by_the_agent_works(
    sshd_server: SshServer, tmp_path: Path, ssh_agent: Path
) -> None:
    sshd_server.trust()
    locked = tmp_path / "id_locked"
    locked.write_bytes(sshd_server.key_path.read_bytes())
    locked.chmod(0o600)
    subprocess.run(
        ["ssh-keygen", "-q", "-p", "-N", "secret words", "-f", str(locked)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    async with open_link(sshd_server.profile("box", identity_file=str(locked))) as link:
        assert (await link.run("echo unlocked-by-agent")).stdout == "unlocked-by-agent\n"


async def test_a_file_that_is_not_a_key_is_named(sshd_server: SshServer, tmp_path: Path) -> None:
    sshd_server.trust()
    junk = tmp_path / "not-a-key"
    junk.write_text("hello\n")
    with pytest.raises(AuthenticationFailed, match=f"cannot use {junk}"):
        async with open_link(sshd_server.profile("box", identity_file=str(junk))):
            pass


async def test_without_key_file_or_agent_login_is_refused(
    sshd_server: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))  # no default key files anywhere
    sshd_server.trust()
    with pytest.raises(AuthenticationFailed, match="refused every key"):
        async with open_link(sshd_server.profile("box", identity_file=None)):
            pass


async def test_agent_key_is_used(
    sshd_server: SshServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ssh_agent: Path,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    sshd_server.trust()
    async with open_link(sshd_server.profile("box", identity_file=None)) as link:
        assert (await link.run("echo via-agent")).stdout == "via-agent\n"


@pytest.mark.parametrize("jump_style", ["ssh-config alias", "gputui profile", "user@host:port"])
async def test_proxy_jump_goes_through_the_second_host(
    sshd_server: SshServer, sshd_server2: SshServer, ssh_dir: Path, jump_style: str
) -> None:
    sshd_server.trust()
    sshd_server2.trust()
    if jump_style == "ssh-config alias":
        (ssh_dir / "config").write_text(
            f"Host jumpbox\n  HostName {sshd_server2.host}\n  Port {sshd_server2.port}\n"
            f"  User {sshd_server2.user}\n  IdentityFile {sshd_server2.key_path}\n"
        )
        jump = "jumpbox"
    elif jump_style == "gputui profile":
        HostStore().upsert(sshd_server2.profile("jumpbox"))
        jump = "jumpbox"
    else:
        # No key named for the hop: the default key file in ~/.ssh is used, as ssh would.
        (ssh_dir / "id_ed25519").write_bytes(sshd_server2.key_path.read_bytes())
        (ssh_dir / "id_ed25519").chmod(0o600)
        jump = f"{sshd_server2.user}@{sshd_server2.host}:{sshd_server2.port}"
    link = await trusted_ssh_link(sshd_server, proxy_jump=jump)
    try:
        assert (await link.run("echo through")).stdout == "through\n"
        # The route runs through the jump host: cutting its connections cuts ours.
        sshd_server2.kill_connections()
        for _ in range(250):
            if not link.is_connected:
                break
            await asyncio.sleep(0.02)
        assert not link.is_connected
        assert (await link.run("echo again")).stdout == "again\n"
        assert link.reconnects == 1
    finally:
        await link.close()
