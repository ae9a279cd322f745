"""gputui's own files on the laptop: concurrent updates, links, a full disk, bad bytes.

``hosts.yaml`` and ``known_hosts`` are updated under a lock, so processes running at once keep
every change; a linked ``hosts.yaml`` is written through to its target, never chmod-ed when it
is someone else's; and every file problem is one line in the CLI while the app still starts.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from pwd import struct_passwd

import asyncssh
import pytest
from textual.widgets import Static

from transfer.hosts import HostStore
from tui.app import GputuiApp
from tui.cli import main
from tui.cli.headless import settle
from tui.screens.host_list import HostListScreen

ROOT = Path(__file__).resolve().parents[2]
Capture = pytest.CaptureFixture[str]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str, *fragments: str) -> str:
    assert err.startswith("gputui: ") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err.strip()


def gputui_processes(argvs: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Start every ``gputui ARGV`` at once, then wait for all of them."""
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *argv],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    done = []
    for process in started:
        out, err = process.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


# -- the lock ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_twenty_concurrent_adds_keep_all_twenty_profiles(isolated_home: Path) -> None:
    names = [f"gpu-{index:02d}" for index in range(20)]
    results = gputui_processes(
        [["hosts", "add", name, "--host", f"10.0.0.{i + 1}"] for i, name in enumerate(names)]
    )
    assert [r.returncode for r in results] == [0] * 20, [r.stderr for r in results]
    assert sorted(h.name for h in HostStore().load()) == sorted(["local", *names])
    assert (isolated_home / "hosts.yaml").stat().st_mode & 0o777 == 0o600


TRUST = """
import sys, asyncssh
from transfer.hostkeys import trust_host_key
from transfer.hosts import HostProfile
from transfer.known_hosts import HostKeyInfo
name, public = sys.argv[1], sys.argv[2]
key = asyncssh.import_public_key(public)
info = HostKeyInfo(name, key.get_algorithm(), key.get_fingerprint("sha256"), public, name)
print("ready", flush=True)
trust_host_key(HostProfile(name="h", hostname=name), info)
"""


def public_key() -> str:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return " ".join(key.export_public_key().decode().split()[:2])


@pytest.mark.slow
def test_concurrent_trusts_wait_for_the_lock_and_keep_every_line(isolated_home: Path) -> None:
    keys = {f"10.1.0.{index}": public_key() for index in range(12)}
    same = public_key()  # one more host, trusted by four processes at once: one line
    jobs = [*keys.items(), *[("10.1.0.99", same)] * 4]
    lock_path = isolated_home / "known_hosts.lock"
    with lock_path.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = [
            subprocess.Popen([sys.executable, "-c", TRUST, name, key], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name, key in jobs
        ]
        for process in started:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n"
        time.sleep(1.0)
        known_hosts = isolated_home / "known_hosts"
        assert not known_hosts.exists() or known_hosts.read_text() == ""  # all waiting
        fcntl.flock(held, fcntl.LOCK_UN)
    errors = [p.communicate(timeout=120)[1] for p in started]
    assert [p.returncode for p in started] == [0] * len(jobs), errors
    lines = known_hosts.read_text().splitlines()
    assert sorted(lines) == sorted([f"{n} {k}" for n, k in keys.items()] + [f"10.1.0.99 {same}"])


# -- a linked hosts.yaml -----------------------------------------------------------------------
def test_a_linked_hosts_file_is_written_through_to_its_target(
    isolated_home: Path, tmp_path: Path, capsys: Capture
) -> None:
    target = tmp_path / "dotfiles" / "hosts.yaml"
    target.parent.mkdir()
    target.write_text("hosts:\n  first:\n    hostname: 10.0.0.1\n")
    target.chmod(0o644)
    link = isolated_home / "hosts.yaml"
    link.symlink_to(target)

    code, _, err = run(capsys, "hosts", "add", "second", "--host", "10.0.0.2")
    assert (code, err) == (0, "")
    assert link.is_symlink() and link.resolve() == target
    assert [h.name for h in HostStore().load()] == ["local", "first", "second"]
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["hosts.yaml"]


def test_a_hosts_file_linked_to_another_users_file_is_never_chmod_nor_written(
    isolated_home: Path, other_user: struct_passwd, capsys: Capture
) -> None:
    theirs = Path(other_user.pw_dir) / "hosts.yaml"
    theirs.write_text("hosts:\n  theirs:\n    hostname: 10.9.9.9\n")
    os.chown(theirs, other_user.pw_uid, other_user.pw_gid)
    theirs.chmod(0o644)
    before = theirs.read_bytes()
    (isolated_home / "hosts.yaml").symlink_to(theirs)

    code, out, _ = run(capsys, "hosts", "list")
    assert code == 0 and "theirs" in out
    assert theirs.stat().st_mode & 0o777 == 0o644

    code, _, err = run(capsys, "hosts", "add", "mine", "--host", "10.0.0.3")
    assert code == 1
    one_line(err, str(theirs), "another user")
    assert theirs.read_bytes() == before and theirs.stat().st_uid == other_user.pw_uid
    assert (isolated_home / "hosts.yaml").is_symlink()


# -- one line, never a traceback ---------------------------------------------------------------
@pytest.fixture
def tiny_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``GPUTUI_HOME`` on a 64 KiB tmpfs: the disk that fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    monkeypatch.setenv("GPUTUI_HOME", str(mount))
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_while_saving_is_one_line_and_loses_nothing(
    tiny_home: Path, capsys: Capture
) -> None:
    assert run(capsys, "hosts", "add", "first", "--host", "10.0.0.1")[0] == 0
    hosts = tiny_home / "hosts.yaml"
    before = hosts.read_bytes()
    filler = os.open(tiny_home / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(filler, b"\0" * 4096):
            pass
    except OSError:
        pass  # full
    finally:
        os.close(filler)
    code, _, err = run(capsys, "hosts", "add", "second", "--host", "10.0.0.2", "--tag",
                       "x" * 8000)
    assert code == 1
    one_line(err, str(hosts), "No space left")
    assert hosts.read_bytes() == before
    assert sorted(p.name for p in tiny_home.iterdir()) == ["filler", "hosts.yaml",
                                                           "hosts.yaml.lock"]


def bad_utf8(home: Path) -> str:
    (home / "hosts.yaml").write_bytes(b"hosts:\n  box:\n    hostname: caf\xe9\n")
    return f"{home / 'hosts.yaml'}:3"


def home_is_a_file(home: Path) -> str:
    home.rmdir()
    home.write_text("not a folder\n")
    return f"{home} is not a folder"


def hosts_file_is_a_folder(home: Path) -> str:
    (home / "hosts.yaml").mkdir()
    return f"{home / 'hosts.yaml'} is a folder"


def squeezed(text: str) -> str:
    """Without white space, as wrapped on screen or not."""
    return "".join(text.split())


BROKEN = [bad_utf8, home_is_a_file, hosts_file_is_a_folder]


@pytest.mark.parametrize("break_it", BROKEN, ids=lambda f: f.__name__)
def test_a_broken_hosts_file_is_one_line_in_the_cli(
    isolated_home: Path, capsys: Capture, break_it: object
) -> None:
    expected = break_it(isolated_home)  # type: ignore[operator]
    for argv in (["hosts", "list"], ["hosts", "list", "--json"],
                 ["hosts", "add", "box2", "--host", "10.0.0.2"], ["hosts", "rm", "box"]):
        code, out, err = run(capsys, *argv)
        assert code == 1, argv
        assert out == ""
        one_line(err, expected)


@pytest.mark.parametrize("break_it", BROKEN, ids=lambda f: f.__name__)
async def test_the_app_starts_on_a_broken_hosts_file_and_says_why(
    isolated_home: Path, break_it: object
) -> None:
    expected = break_it(isolated_home)  # type: ignore[operator]
    app = GputuiApp()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, HostListScreen)
        banner = app.screen.query_one("#config-error", Static)
        assert banner.display and squeezed(expected) in squeezed(str(banner.render()))
        assert any(expected in str(n.message) for n in app._notifications)
        assert app.hosts == [app.host_named("local")]
