"""Fixtures for the telemetry tests: a test host whose PATH holds the recorded nvidia-smi.

The recorded ``nvidia-smi`` (``tests/fixtures/bin``) reaches the host's PATH the way a person's
tools do on a rented machine: through the profile's ``env_activation``. The host's work folder is
a fresh, empty folder, so the sampler is not importable there unless a test activates the venv.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
from sshd import SshServer

from transfer.hosts import HostProfile

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RECORDED_BIN = FIXTURES / "bin"
RECORDED = FIXTURES / "recorded"
VENV_ACTIVATE = Path(sys.prefix) / "bin" / "activate"


def recorded_smi_activation() -> str:
    return f"export PATH={shlex.quote(str(RECORDED_BIN))}:$PATH"


@pytest.fixture
def smi_host(sshd_server: SshServer, tmp_path: Path) -> HostProfile:
    """A trusted host that looks like the recorded 2x A100 box to nvidia-smi."""
    sshd_server.trust()
    workdir = tmp_path / "host-workdir"
    workdir.mkdir()
    return sshd_server.profile(
        "a100-box",
        workdir=str(workdir),
        env_activation=recorded_smi_activation(),
        rate_usd_per_hour=1.89,
    )
