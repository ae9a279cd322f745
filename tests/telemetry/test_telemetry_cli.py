"""``gputui gpu HOST`` as a person runs it: a real process, a real sshd, the recorded nvidia-smi."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from transfer.hosts import HostProfile, HostStore

# The first block of recorded_nvidia_smi_a100x2_query_gpu_lms1000.csv and its compute apps,
# written out field by field.
EXPECTED_GPUS = [
    {
        "index": 0,
        "name": "NVIDIA A100-SXM4-80GB",
        "uuid": "GPU-4b9a3e5c-1f7d-2a6e-93b1-0c8d5f2e7a41",
        "utilization_pct": 100,
        "memory_used_mib": 40397,
        "memory_total_mib": 81920,
        "temperature_c": 62,
        "power_draw_w": 312.45,
        "power_limit_w": 400.0,
        "fan_pct": None,
        "sm_clock_mhz": 1410,
        "processes": [
            {"pid": 2412871, "user": None, "gpu_memory_mib": 40391,
             "command": "/opt/conda/bin/python"}
        ],
    },
    {
        "index": 1,
        "name": "NVIDIA A100-SXM4-80GB",
        "uuid": "GPU-e07c6d19-8b52-4f3a-a6d0-7e15c9b3f208",
        "utilization_pct": 0,
        "memory_used_mib": 4,
        "memory_total_mib": 81920,
        "temperature_c": 33,
        "power_draw_w": 61.23,
        "power_limit_w": 400.0,
        "fan_pct": None,
        "sm_clock_mhz": 210,
        "processes": [],
    },
]


def gputui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        cwd=Path(__file__).resolve().parents[2],
    )


def test_gpu_once_json_returns_the_recorded_gpus_field_for_field(smi_host: HostProfile) -> None:
    HostStore().upsert(smi_host)
    done = gputui("gpu", smi_host.name, "--once", "--json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    sample = json.loads(lines[0])
    assert sample["schema"] == 1
    assert sample["source"] == "nvidia-smi"
    assert sample["gpu_status"] == "ok"
    assert sample["driver_version"] == "535.104.05"
    assert sample["gpus"] == EXPECTED_GPUS
    host = sample["host"]
    assert host["disk_path"] == smi_host.workdir
    assert host["cpu_count"] >= 1 and host["ram_total_mib"] > 0
    assert host["cpu_pct"] is not None  # two /proc reads in the one round trip


def test_gpu_once_prints_a_human_summary(smi_host: HostProfile) -> None:
    HostStore().upsert(smi_host)
    done = gputui("gpu", smi_host.name, "--once")
    assert done.returncode == 0, done.stderr
    assert "driver 535.104.05" in done.stdout
    assert "GPU 0  NVIDIA A100-SXM4-80GB  util 100%  mem 40397 / 81920 MiB  62°C" in done.stdout
    assert "fan N/A" in done.stdout
    assert "pid 2412871" in done.stdout


def test_gpu_of_an_unknown_host_fails_with_one_line() -> None:
    done = gputui("gpu", "nowhere", "--once")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "gputui: no host named 'nowhere'; see `gputui hosts list`"
    ]


def test_gpu_streams_json_lines_until_interrupted(smi_host: HostProfile) -> None:
    HostStore().upsert(smi_host)
    process = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "gpu", smi_host.name, "--json", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    samples = [json.loads(line) for line in lines]
    assert [[g["uuid"] for g in s["gpus"]] for s in samples] == [
        [g["uuid"] for g in EXPECTED_GPUS]
    ] * 3
    assert len({s["timestamp"] for s in samples}) == 3
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == "gputui: interrupted"
