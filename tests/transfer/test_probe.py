"""The host probe, over a real sshd and on this machine.

``nvidia-smi`` is replaced by a small script that replays a recording of the query's output
(``recordings/``), so the GPU part is exercised on machines without a GPU.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sshd import SshServer

from transfer.connect import open_link
from transfer.hosts import HostProfile, local_host
from transfer.probe import GPU_QUERY, GpuInfo, parse_gpu_line, probe

RECORDING = Path(__file__).parent / "recordings" / "nvidia-smi-query-gpu-a100x2.csv"
EXPECTED_ARGS = GPU_QUERY.split(" ", 1)[1]


@dataclass
class Target:
    profile: HostProfile
    bin_dir: Path  # first on PATH of the commands the probe runs


@pytest.fixture(params=["local", "ssh"])
def target(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Target]:
    if request.param == "local":
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        yield Target(local_host(), bin_dir)
    else:
        server: SshServer = request.getfixturevalue("fresh_sshd")
        server.trust()
        yield Target(server.profile("box"), server.bin_dir)


def install_fake_nvidia_smi(bin_dir: Path, body: str) -> None:
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$*" != {shlex.quote(EXPECTED_ARGS)} ]; then\n'
        '  echo "unexpected arguments: $*" >&2; exit 2\n'
        "fi\n" + body
    )
    script.chmod(0o755)


def os_release_pretty_name() -> str:
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?$', Path("/etc/os-release").read_text(), re.M)
    assert match is not None
    return match.group(1)


async def test_probe_reports_os_tools_gpus_and_disk(target: Target, tmp_path: Path) -> None:
    install_fake_nvidia_smi(target.bin_dir, f"cat {shlex.quote(str(RECORDING))}\n")
    workdir = tmp_path / "not" / "yet"
    profile = target.profile.model_copy(update={"workdir": str(workdir)})

    report = await probe(profile)

    assert report.host == profile.name
    assert report.os == os_release_pretty_name()
    async with open_link(profile) as link:
        version = await link.run("python3 -c 'import platform; print(platform.python_version())'")
    assert report.python == version.stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", report.python or "")
    assert report.tmux == (shutil.which("tmux") is not None)
    assert report.rsync == (shutil.which("rsync") is not None)
    assert report.nvidia_smi
    a100 = GpuInfo(name="NVIDIA A100-SXM4-80GB", memory_mib=81920, driver="535.129.03")
    assert report.gpus == [a100, a100]
    assert report.workdir == str(workdir)
    assert not workdir.exists() and not workdir.parent.exists()  # the probe creates nothing
    assert report.disk_free_bytes is not None
    assert abs(report.disk_free_bytes - shutil.disk_usage(tmp_path).free) < 256 * 1024 * 1024
    assert 0 < report.latency_ms < 5000


async def test_probe_json_is_plain_data(target: Target) -> None:
    install_fake_nvidia_smi(target.bin_dir, f"cat {shlex.quote(str(RECORDING))}\n")
    report = await probe(target.profile)
    data = json.loads(json.dumps(report.to_json()))
    assert set(data) == {
        "host",
        "latency_ms",
        "os",
        "python",
        "tmux",
        "rsync",
        "nvidia_smi",
        "gpus",
        "workdir",
        "disk_free_bytes",
    }
    assert data["gpus"][0] == {
        "name": "NVIDIA A100-SXM4-80GB",
        "memory_mib": 81920,
        "driver": "535.129.03",
    }


async def test_workdir_under_home_is_expanded_on_the_host(target: Target) -> None:
    profile = target.profile.model_copy(update={"workdir": "~/gputui-probe-never-created"})
    async with open_link(profile) as link:
        report = await probe(profile, link=link)
        home = await link.home()
    assert report.workdir == f"{home}/gputui-probe-never-created"
    assert not Path(report.workdir).exists()
    assert report.disk_free_bytes is not None and report.disk_free_bytes > 0


async def test_a_failing_nvidia_smi_gives_no_gpus(target: Target) -> None:
    install_fake_nvidia_smi(
        target.bin_dir,
        "echo 'NVIDIA-SMI has failed because it couldn'\\''t communicate with the NVIDIA driver.'\n"
        "exit 9\n",
    )
    report = await probe(target.profile)
    assert report.nvidia_smi and report.gpus == []


async def test_nvidia_smi_presence_matches_the_machine(target: Target) -> None:
    report = await probe(target.profile)  # no stand-in installed
    assert report.nvidia_smi == (shutil.which("nvidia-smi") is not None)
    if not report.nvidia_smi:
        assert report.gpus == []


def test_gpu_line_with_missing_values() -> None:
    assert parse_gpu_line("Tesla T4, [N/A], [N/A]") == GpuInfo("Tesla T4", None, None)
    assert parse_gpu_line("NVIDIA H100 80GB HBM3, 81559, 550.54.15") == GpuInfo(
        "NVIDIA H100 80GB HBM3", 81559, "550.54.15"
    )
