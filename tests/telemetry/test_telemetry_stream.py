"""Telemetry streams over a real sshd: the recorded nvidia-smi, the sampler, a bare host, and
what a stream reports while the link is down."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

import pytest
from conftest import VENV_ACTIVATE, recorded_smi_activation
from sshd import SshServer

from transfer.hosts import HostProfile, local_host
from transfer.local_link import LocalLink
from transfer.ssh_link import SSHLink
from transfer.telemetry import source
from transfer.telemetry.events import (
    TelemetryError,
    TelemetryEvent,
    TelemetryJobs,
    TelemetrySample,
    TelemetryStale,
)
from transfer.telemetry.stream import TelemetryStream

INTERVAL = 0.2
A100_UUIDS = [
    "GPU-4b9a3e5c-1f7d-2a6e-93b1-0c8d5f2e7a41",
    "GPU-e07c6d19-8b52-4f3a-a6d0-7e15c9b3f208",
]
# GPU 0's power draw in the three recorded ticks of `-lms 1000`, replayed in a loop.
RECORDED_POWER_GPU0 = [312.45, 305.12, 318.77]


Events = AsyncGenerator[TelemetryEvent, None]


async def samples(events: Events, count: int) -> list[TelemetrySample]:
    taken: list[TelemetrySample] = []
    async for event in events:
        if isinstance(event, TelemetryError):
            raise AssertionError(f"telemetry error: {event.message}")
        if isinstance(event, TelemetrySample):
            taken.append(event)
            if len(taken) == count:
                break
    return taken


@pytest.fixture(autouse=True)
def fresh_detection() -> None:
    """Each test detects its host's source itself."""
    source._CACHE.clear()


async def test_a_bare_host_streams_the_recorded_nvidia_smi(smi_host: HostProfile) -> None:
    stream = TelemetryStream(smi_host, interval=INTERVAL)
    events = stream.events()
    taken = await samples(events, 5)
    await events.aclose()

    first = taken[0].sample
    assert first.source == "nvidia-smi"
    assert first.gpu_status == "ok"
    assert first.driver_version == "535.104.05"
    assert [gpu.uuid for gpu in first.gpus] == A100_UUIDS
    # The ticks come in the recorded order, one per interval, GPU by GPU.
    powers = [event.sample.gpus[0].power_draw_w or 0.0 for event in taken]
    start = RECORDED_POWER_GPU0.index(powers[0])
    assert powers == [RECORDED_POWER_GPU0[(start + i) % 3] for i in range(5)]
    assert [event.sample.gpus[1].utilization_pct for event in taken] == [0] * 5
    # Processes come from --query-compute-apps, joined on the GPU uuid.
    assert [(p.pid, p.gpu_memory_mib, p.command) for p in first.gpus[0].processes] == [
        (2412871, 40391, "/opt/conda/bin/python")
    ]
    assert first.gpus[1].processes == []
    # The /proc part is read on the host (this machine, behind sshd).
    assert first.host.ram_total_mib and first.host.cpu_count
    assert first.host.disk_path == smi_host.workdir
    assert taken[-1].sample.host.cpu_pct is not None
    assert taken[-1].received_at > taken[0].received_at


async def test_the_stream_reads_the_hosts_jobs(smi_host: HostProfile) -> None:
    jobs: list[TelemetryJobs] = []
    async for event in TelemetryStream(smi_host, interval=INTERVAL).events():
        if isinstance(event, TelemetryJobs):
            jobs.append(event)
            break
    assert jobs[0].jobs == ()
    assert jobs[0].running == ()


async def test_the_sampler_is_used_where_it_is_installed(
    sshd_server: SshServer, tmp_path: Path
) -> None:
    sshd_server.trust()
    host = sshd_server.profile(
        "venv-box", workdir=str(tmp_path), env_activation=f". {VENV_ACTIVATE}"
    )
    events = TelemetryStream(host, interval=INTERVAL).events()
    taken = await samples(events, 2)
    await events.aclose()
    sample = taken[-1].sample
    assert sample.source == "nvml"
    # No NVIDIA driver on this machine: the sampler says so, and the host part still works.
    assert sample.gpus == []
    assert "no NVIDIA driver" in sample.gpu_status
    assert sample.host.ram_total_mib and sample.host.cpu_pct is not None
    assert sample.host.disk_path == str(tmp_path)


async def test_without_nvidia_smi_the_host_part_streams_alone(
    sshd_server: SshServer, tmp_path: Path
) -> None:
    sshd_server.trust()
    host = sshd_server.profile("cpu-box", workdir=str(tmp_path))
    events = TelemetryStream(host, interval=INTERVAL).events()
    taken = await samples(events, 2)
    await events.aclose()
    assert [t.sample.gpu_status for t in taken] == ["no NVIDIA driver (nvidia-smi not found)"] * 2
    assert all(t.sample.gpus == [] for t in taken)
    assert taken[0].sample.host.cpu_pct is None  # a rate needs two readings
    assert taken[1].sample.host.cpu_pct is not None
    assert taken[1].sample.host.load_1 is not None


async def test_the_last_sample_ages_while_the_link_is_down(
    fresh_sshd: SshServer, tmp_path: Path
) -> None:
    fresh_sshd.trust()
    host = fresh_sshd.profile(
        "flaky", workdir=str(tmp_path), env_activation=recorded_smi_activation()
    )
    link = SSHLink(host)
    link.backoff = link.backoff.tuned(initial_s=0.1, cap_s=0.3)
    stream = TelemetryStream(
        host, interval=INTERVAL, link=link, first_backoff_s=0.1, max_backoff_s=0.3,
        stale_after_s=0.5,
    )
    events = stream.events()
    # Every session this stream opens is long-lived; once the jobs were read, none is starting
    # up when the host goes away.
    jobs_read = False
    before: list[TelemetrySample] = []
    async for event in events:
        jobs_read = jobs_read or isinstance(event, TelemetryJobs)
        if isinstance(event, TelemetrySample):
            before.append(event)
        if jobs_read and len(before) >= 2:
            break
    last_good = before[-1]

    fresh_sshd.stop()  # the host vanishes: connections and listener
    stale: list[TelemetryStale] = []
    async for event in events:
        assert not isinstance(event, TelemetrySample), "a sample while the host is down"
        if isinstance(event, TelemetryStale):
            stale.append(event)
            # Stopping sshd holds this loop still for a moment, so the first stale ticks may
            # come before the stream has seen the connection go: wait for both.
            if (event.age >= 1.5 and _says_unreachable(stale)) or event.age >= 10:
                break
    assert all(event.last == last_good.sample for event in stale)
    ages = [event.age for event in stale]
    assert ages == sorted(ages) and ages[-1] >= 1.5
    assert _says_unreachable(stale)

    fresh_sshd.start()  # back on the same port, same key
    after = await samples(events, 1)
    await events.aclose()
    assert after[0].received_at - last_good.received_at >= 1.5
    assert [gpu.uuid for gpu in after[0].sample.gpus] == A100_UUIDS


async def test_an_untrusted_host_key_ends_the_stream(
    sshd_server: SshServer, tmp_path: Path
) -> None:
    host = sshd_server.profile("stranger", workdir=str(tmp_path))
    events = [event async for event in TelemetryStream(host, interval=INTERVAL).events()]
    assert len(events) == 1
    assert isinstance(events[0], TelemetryError) and events[0].fatal
    assert "unknown host key" in events[0].message


async def test_the_local_host_samples_in_process() -> None:
    events = TelemetryStream(local_host(), interval=INTERVAL).events()
    taken = await samples(events, 2)
    await events.aclose()
    sample = taken[-1].sample
    assert sample.source == "nvml"
    assert sample.host.cpu_count and sample.host.cpu_pct is not None


async def test_a_failing_driver_and_activation_are_reported_and_the_host_part_goes_on(
    sshd_server: SshServer, tmp_path: Path
) -> None:
    sshd_server.trust()
    broken = tmp_path / "broken-bin"
    broken.mkdir()
    smi = broken / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\necho 'NVIDIA-SMI has failed because it couldn'\"'\"'t communicate with the "
        "NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.'\n"
        "exit 9\n"
    )
    smi.chmod(0o755)
    host = sshd_server.profile(
        "broken-box",
        workdir=str(tmp_path),
        env_activation=f"export PATH={broken}:$PATH\nconda activate nowhere",
    )
    seen: list[TelemetryEvent] = []
    async for event in TelemetryStream(host, interval=INTERVAL).events():
        seen.append(event)
        if sum(isinstance(e, TelemetrySample) for e in seen) == 2:
            break
    errors = [e for e in seen if isinstance(e, TelemetryError)]
    assert [e.fatal for e in errors] == [False]
    assert "environment activation of broken-box failed" in errors[0].message
    statuses = {e.sample.gpu_status for e in seen if isinstance(e, TelemetrySample)}
    assert statuses == {"NVIDIA driver not loaded"}


async def test_a_link_passed_in_is_used_and_left_open() -> None:
    class SharedLink(LocalLink):
        closed = False

        async def close(self) -> None:
            self.closed = True

    shared = SharedLink(local_host())
    events = TelemetryStream(local_host(), interval=INTERVAL, link=shared).events()
    await samples(events, 1)
    await events.aclose()
    assert not shared.closed


def _says_unreachable(stale: list[TelemetryStale]) -> bool:
    return any("reach" in event.reason or "connection" in event.reason for event in stale)
