"""Fixtures for push/pull tests."""

from __future__ import annotations

import pytest
from sshd import SshServer

from transfer.hosts import HostProfile


@pytest.fixture
def box(sshd_server: SshServer) -> HostProfile:
    """A trusted host profile for the shared test sshd."""
    sshd_server.trust()
    return sshd_server.profile("box")
