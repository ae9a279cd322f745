"""What a host offers, found with one shell script: OS, Python, tools, GPUs, free disk, latency.

``gputui hosts test`` and the host list use it. The script is POSIX sh, changes nothing on the
host (the workdir is not created: free space is measured at its nearest existing parent) and
only calls ``nvidia-smi`` when it exists, with a time limit, since a broken driver can hang it.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from transfer.connect import open_link
from transfer.hosts import HostProfile
from transfer.link import Link
from transfer.scripts import load

LATENCY_SAMPLES = 3
PROBE_TIMEOUT_S = 60.0
GPU_QUERY = "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits"


@dataclass
class GpuInfo:
    name: str
    memory_mib: int | None
    driver: str | None


@dataclass
class ProbeReport:
    host: str
    latency_ms: float
    os: str
    python: str | None
    tmux: bool
    rsync: bool
    nvidia_smi: bool
    gpus: list[GpuInfo] = field(default_factory=list)
    workdir: str = ""
    disk_free_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def probe(host: HostProfile, *, link: Link | None = None) -> ProbeReport:
    """Connect (unless given a connected ``link``) and report what the host offers."""
    if link is not None:
        return await _probe_with(host, link)
    async with open_link(host) as opened:
        return await _probe_with(host, opened)


async def _probe_with(host: HostProfile, link: Link) -> ProbeReport:
    latency = min([await _round_trip(link) for _ in range(LATENCY_SAMPLES)])
    result = await link.run(probe_script(host.workdir), timeout=PROBE_TIMEOUT_S, check=True)
    return parse_probe_output(host.name, latency * 1000.0, result.stdout)


async def _round_trip(link: Link) -> float:
    start = time.perf_counter()
    await link.run("true", check=True)
    return time.perf_counter() - start


def probe_script(workdir: str) -> str:
    """The script, after a prelude with the workdir quoted (``~`` becomes the login's ``$HOME``)
    and the nvidia-smi query as its arguments."""
    return f"wd={_shell_path(workdir)}\nset -- {GPU_QUERY}\n" + load("probe_host.sh")


def parse_probe_output(host: str, latency_ms: float, text: str) -> ProbeReport:
    values: dict[str, str] = {}
    tools: set[str] = set()
    gpus: list[GpuInfo] = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "has":
            tools.add(value)
        elif key == "gpu":
            gpus.append(parse_gpu_line(value))
        else:
            values.setdefault(key, value)
    free_kib = values.get("disk_free_kib", "")
    return ProbeReport(
        host=host,
        latency_ms=round(latency_ms, 2),
        os=values.get("os") or "unknown",
        python=values.get("python") or None,
        tmux="tmux" in tools,
        rsync="rsync" in tools,
        nvidia_smi="nvidia-smi" in tools,
        gpus=gpus,
        workdir=values.get("workdir", ""),
        disk_free_bytes=int(free_kib) * 1024 if free_kib.isdigit() else None,
    )


def parse_gpu_line(line: str) -> GpuInfo:
    """``NVIDIA A100-SXM4-80GB, 81920, 535.129.03`` (csv, noheader, nounits)."""
    parts = [p.strip() for p in line.rsplit(",", 2)]
    while len(parts) < 3:
        parts.append("")
    name, memory, driver = parts
    return GpuInfo(
        name=name,
        memory_mib=int(memory) if memory.isdigit() else None,
        driver=driver if driver and not driver.startswith("[") else None,
    )


def _shell_path(path: str) -> str:
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)
