"""What a Link answers for its callers: a process as a binary pipe, and what differs by kind."""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator

import pytest
from sshd import SshServer

from transfer.connect import LINK_KINDS, link_class, open_link
from transfer.errors import ConfigError
from transfer.hosts import HostProfile, local_host
from transfer.link import Link
from transfer.local_link import LocalLink


@pytest.fixture(params=["local", "ssh"])
async def link(request: pytest.FixtureRequest) -> AsyncIterator[Link]:
    if request.param == "local":
        opened = open_link(local_host())
    else:
        server: SshServer = request.getfixturevalue("sshd_server")
        server.trust()
        opened = open_link(server.profile("box"))
    async with opened:
        yield opened


async def test_a_process_is_a_binary_pipe_with_stderr_and_exit_status(link: Link) -> None:
    process = await link.start_process(
        "tr a-z A-Z; echo warned >&2; exit 3", doing="shouting", receive_window=64 * 1024
    )
    payload = b"bytes \xff and more\n" * 1000
    await process.write(payload)
    await process.write_eof()
    out = bytearray()
    while chunk := await process.read(1 << 16):
        out += chunk
    status, stderr = await process.finish()
    assert bytes(out) == payload.upper()
    assert (status, stderr) == (3, b"warned\n")


async def test_an_aborted_process_stops(link: Link) -> None:
    process = await link.start_process("cat", doing="waiting")
    await process.write(b"x")
    assert await process.read(1) == b"x"
    process.abort()
    with pytest.raises(Exception):  # noqa: B017 - each kind reports its own way, or b""
        for _ in range(100):
            if not await process.read(1):
                raise EOFError


async def test_the_link_answers_what_differs_by_kind(sshd_server: SshServer) -> None:
    remote = open_link(sshd_server.profile("box"))
    here = open_link(local_host())
    tmux = ["tmux", "attach-session", "-t", "=job"]
    assert here.terminal_argv(tmux) == tmux
    argv = remote.terminal_argv(tmux)
    assert argv[:2] == ["ssh", "-t"] and argv[-1] == shlex.join(tmux)
    assert remote.has_host_key and not here.has_host_key
    with pytest.raises(ConfigError, match="no SSH host key"):
        await here.presented_host_key()


def test_one_table_picks_the_kind_of_link() -> None:
    assert link_class(local_host()) is LocalLink
    remote = HostProfile(name="gpu1", hostname="gpu1.example")
    assert link_class(remote).__name__ == "SSHLink"
    assert len(LINK_KINDS) == 2
