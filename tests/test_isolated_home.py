"""No test touches the home of the person running the suite: the `local` host's home is per test."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from transfer.hosts import local_host
from transfer.jobs.host import HostJobs
from transfer.local_link import LocalLink


async def test_the_local_hosts_jobs_live_in_a_home_of_this_test(isolated_home: Path) -> None:
    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    assert Path.home() != real_home
    async with LocalLink(local_host()) as link:
        root = Path(await HostJobs(link).root())
    assert root.is_relative_to(isolated_home.parent)
    assert not root.is_relative_to(real_home)
