"""Shared fixtures: an isolated gputui home for every test, and real sshd servers.

Tests never read the person's own home: ``HOME`` (the ``local`` host's home, so its jobs folder
and work folders) and ``GPUTUI_SSH_DIR`` point at empty folders per test, and ``SSH_AUTH_SOCK`` is
unset unless a test starts its own agent.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import netguard
import pytest
from hostile import other_user  # noqa: F401  (a fixture for every test folder)
from sshd import SshServer, generate_key

from transfer.keeper import client as keeper_client

netguard.install()

#: Tests that start the trainer (torch, a model): everything under tests/trainers/, and the job
#: tests that train. ``make test-fast`` (``-m "not training"``) leaves them out; ``make test``
#: runs them.
TRAINING_FOLDER = "trainers"
TRAINING_MODULES = frozenset({"test_train_cli.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent.name == TRAINING_FOLDER or item.path.name in TRAINING_MODULES:
            item.add_marker(pytest.mark.training)


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """``$HOME``, ``$GPUTUI_HOME``, the ssh folder gputui reads and the connection keepers'
    folder are fresh, empty folders; keepers that a test's pushes started are stopped after it.

    They live outside ``tmp_path``, so a test's own ``tmp_path`` starts empty.
    """
    base = tmp_path_factory.mktemp("isolated")
    user_home = base / "home"
    home = base / "gputui-home"
    ssh_dir = base / "dot-ssh"
    run_dir = base / "run"
    for folder in (user_home, home, ssh_dir):
        folder.mkdir(mode=0o700)
    real_pyenv = Path.home() / ".pyenv"
    if "PYENV_ROOT" not in os.environ and real_pyenv.is_dir():
        monkeypatch.setenv("PYENV_ROOT", str(real_pyenv))  # pyenv's shims find Python through it
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.setenv("GPUTUI_HOME", str(home))
    monkeypatch.setenv("GPUTUI_SSH_DIR", str(ssh_dir))
    monkeypatch.setenv("GPUTUI_RUN_DIR", str(run_dir))
    monkeypatch.delenv("GPUTUI_KEEP_S", raising=False)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("SSH_AGENT_PID", raising=False)
    yield home
    for sock in run_dir.glob("*.sock"):
        keeper_client.stop(sock)


@pytest.fixture
def ssh_dir(isolated_home: Path) -> Path:
    """The folder that stands for ``~/.ssh`` in this test (config, known_hosts, keys)."""
    return Path(os.environ["GPUTUI_SSH_DIR"])


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user key every test sshd accepts (generated once per run)."""
    return generate_key(tmp_path_factory.mktemp("client-key") / "id_ed25519")


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory, client_key: Path) -> Iterator[SshServer]:
    """A host, shared by the tests that do not change its keys."""
    server = SshServer(root=tmp_path_factory.mktemp("sshd1"), client_key=client_key)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sshd_server2(tmp_path_factory: pytest.TempPathFactory, client_key: Path) -> Iterator[SshServer]:
    """A second host (a jump host, or another machine), with its own host key."""
    server = SshServer(root=tmp_path_factory.mktemp("sshd2"), client_key=client_key)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def fresh_sshd(tmp_path: Path, client_key: Path) -> Iterator[SshServer]:
    """A host of this test alone, for tests that rotate its key or restart it."""
    server = SshServer(root=tmp_path / "sshd", client_key=client_key)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def ssh_agent(tmp_path: Path, client_key: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ssh-agent holding the test key; ``SSH_AUTH_SOCK`` points at it."""
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not sock.exists():
            if time.monotonic() > deadline or agent.poll() is not None:
                raise RuntimeError("ssh-agent did not start")
            time.sleep(0.01)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(
            ["ssh-add", "-q", str(client_key)],
            env=env,
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        agent.terminate()
        agent.wait(timeout=5)
