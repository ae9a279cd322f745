"""One link per host, counted: the app's jobs, telemetry and transfers share it."""

from __future__ import annotations

import asyncio

import pytest
from waiting import pilot_until

from transfer.hosts import HostProfile, local_host
from transfer.link_pool import LinkPool
from tui.app import GputuiApp
from tui.screens.host_screen import HostScreen


class CountedLink:
    def __init__(self, host: HostProfile) -> None:
        self.host = host
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def test_users_share_a_link_that_closes_with_its_last_user() -> None:
    async def scenario() -> None:
        pool = LinkPool(CountedLink)  # type: ignore[arg-type]
        host = local_host()
        jobs, telemetry = pool.acquire(host), pool.acquire(host)
        assert jobs is telemetry and pool.users(host.name) == 2
        await pool.release(jobs)
        assert not telemetry.closed  # type: ignore[attr-defined]
        await pool.release(telemetry)
        assert telemetry.closed and pool.users(host.name) == 0  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_an_edited_profile_gets_a_new_link_and_the_old_one_lives_on_for_its_users() -> None:
    async def scenario() -> None:
        pool = LinkPool(CountedLink)  # type: ignore[arg-type]
        host = local_host()
        old = pool.acquire(host)
        edited = host.model_copy(update={"workdir": "/elsewhere"})
        new = pool.acquire(edited)
        assert new is not old
        assert not old.closed  # type: ignore[attr-defined]
        await pool.release(old)
        assert old.closed and not new.closed  # type: ignore[attr-defined]
        await pool.close()
        assert new.closed  # type: ignore[attr-defined]

    asyncio.run(scenario())


@pytest.mark.usefixtures("hosts_yaml")
async def test_the_jobs_and_the_telemetry_of_a_host_screen_use_one_link() -> None:
    app = GputuiApp(start_host="local")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot_until(pilot, lambda: isinstance(app.screen, HostScreen))
        await pilot_until(pilot, lambda: app.jobs.source("local") is not None)
        assert app.links.users("local") == 2  # the Jobs pane's list and the GPU telemetry
        app.screen.dismiss()
        await pilot_until(pilot, lambda: app.jobs.listing("local") is None)
        await pilot_until(pilot, lambda: app.links.users("local") == 1)  # telemetry goes on
