"""A hostile host for tests: programs that lie, first on the PATH of a test sshd's sessions.

A rented box is someone else's computer. These helpers make a test's own sshd behave like a
compromised one: ``plant`` puts a program of the test's choosing in front of the real one
(``find``, ``tar``, ``cat``, ``nvidia-smi``…), ``wrap`` runs the real program and rewrites what
it prints. ``HOSTILE_TEXT`` holds strings that must never reach a terminal raw, and
``other_user`` is a second local account for the cases where someone else on this machine
plants links in a pulled folder.

Use a host of the test's own (the ``fresh_sshd`` fixture): a shell that once ran the real
program remembers its path, and other tests must not meet the planted programs.
"""

from __future__ import annotations

import contextlib
import os
import pty
import pwd
import shlex
import subprocess
import sys
import threading
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd import SshServer

#: Strings a host may send that must never reach a terminal as they are: an OSC 52 clipboard
#: write, a CSI that clears the screen, the one-byte C1 CSI (U+009B), a BEL, and rich markup
#: that would become a clickable link or a style if it went through rich.
HOSTILE_TEXT = {
    "osc52": "\x1b]52;c;cHduZWQ=\x07",
    "clear": "\x1b[2J\x1b[H",
    "c1_csi": "\x9b31m",
    "bell": "\x07",
    "markup": "[link=https://evil.example]click[/link][bold red]x[/]",
}


def plant(server: SshServer, name: str, body: str) -> Path:
    """``name`` on the host is now this shell script (first on the PATH of every session)."""
    path = server.bin_dir / name
    path.write_text(body if body.startswith("#!") else "#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def real_program(name: str) -> str:
    """The real program the planted one hides (searched outside the test's bin folder)."""
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(name)


def wrap(server: SshServer, name: str, rewrite: str) -> Path:
    """``name`` runs the real program with the same arguments and standard input, its standard
    output piped through the shell command ``rewrite`` (``sed``, ``python3 -c …``), and exits
    with the real program's status."""
    real = shlex.quote(real_program(name))
    body = (
        "#!/bin/bash\n"
        "set -o pipefail\n"
        f'{real} "$@" | {rewrite}\n'
    )
    return plant(server, name, body)


def python_filter(code: str) -> str:
    """A ``rewrite`` for :func:`wrap`: ``code`` gets ``data`` (stdin bytes) and sets ``out``."""
    program = (
        "import sys\n"
        "data = sys.stdin.buffer.read()\n"
        "out = data\n"
        f"{code}\n"
        "sys.stdout.buffer.write(out)\n"
    )
    return f"python3 -c {shlex.quote(program)}"


def shows_raw_control(text: str) -> bool:
    """Whether ``text`` carries a control character a terminal would act on (C0 but newline
    and tab, DEL, or C1)."""
    return any(
        (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in text
    )


def on_terminal(*argv: str, timeout: float = 60) -> tuple[int, str, str]:
    """``gputui ARGV`` with stdout and stderr on terminals of their own, as a person sees it
    (raw mode, so the terminal adds no carriage returns; ``TERM=dumb``, so rich adds no styles
    of its own and every control character in the output came from the host; rich makes a
    dumb terminal 80 columns wide, so long lines wrap)."""
    masters, slaves = zip(*(pty.openpty() for _ in range(2)), strict=True)
    for slave in slaves:
        tty.setraw(slave)
    process = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", *argv],
        cwd=Path(__file__).resolve().parents[1],
        stdin=subprocess.DEVNULL,
        stdout=slaves[0],
        stderr=slaves[1],
        env={**os.environ, "TERM": "dumb", "COLUMNS": "200"},
    )
    for slave in slaves:
        os.close(slave)
    seen = [bytearray(), bytearray()]

    def drain(index: int) -> None:
        while True:
            try:
                chunk = os.read(masters[index], 65536)
            except OSError:  # EIO: the other end is closed
                return
            if not chunk:
                return
            seen[index] += chunk

    readers = [threading.Thread(target=drain, args=(i,), daemon=True) for i in range(2)]
    for reader in readers:
        reader.start()
    try:
        code = process.wait(timeout=timeout)
    finally:
        process.kill()
        for reader in readers:
            reader.join(timeout=5)
        for master in masters:
            os.close(master)
    out, err = (bytes(b).decode("utf-8", "replace") for b in seen)
    return code, out, err


#: One account per xdist worker (``gw0``, ``gw1``…), so parallel tests never remove each other's.
OTHER_USER = "gputui-other" + os.environ.get("PYTEST_XDIST_WORKER", "")


@pytest.fixture
def other_user() -> Iterator[pwd.struct_passwd]:
    """A second local account (needs root): the other person on a shared laptop or server.

    Created for the test with its own home under /tmp and removed afterwards with that home.
    """
    if os.geteuid() != 0:
        pytest.skip("creating a second local user needs root")
    with contextlib.suppress(KeyError):
        pwd.getpwnam(OTHER_USER)
        subprocess.run(["userdel", "-r", OTHER_USER], check=False, capture_output=True)
    home = f"/tmp/{OTHER_USER}-home"
    subprocess.run(
        ["useradd", "--home-dir", home, "--create-home", "--shell", "/bin/sh", OTHER_USER],
        check=True,
        capture_output=True,
    )
    try:
        yield pwd.getpwnam(OTHER_USER)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", OTHER_USER], check=False, capture_output=True)
        subprocess.run(["userdel", "-r", OTHER_USER], check=False, capture_output=True)


def as_user(user: pwd.struct_passwd, *command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as ``user`` (root drops to it), raising if it fails."""
    return subprocess.run(
        ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
         *command],
        check=True,
        capture_output=True,
        text=True,
    )
