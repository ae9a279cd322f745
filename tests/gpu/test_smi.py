"""The nvidia-smi CSV parser on recorded output, and the recorded nvidia-smi on PATH."""

from __future__ import annotations

import os
import runpy
import subprocess
from pathlib import Path

import pytest
from gpu_nvml_replay import FAKE_BIN, RECORDED

from trainers.protocol.gpu_sample import GpuProcess, GpuSample, HostSample
from trainers.protocol.smi import (
    APPS_QUERY_FIELDS,
    GPU_QUERY_FIELDS,
    GpuBlockAssembler,
    gpus_from_smi,
    parse_apps_csv,
    parse_gpu_csv,
    sample_from_smi,
    smi_apps_command,
    smi_gpu_command,
    smi_status,
)

A100_LMS = RECORDED / "recorded_nvidia_smi_a100x2_query_gpu_lms1000.csv"
A100_APPS = RECORDED / "recorded_nvidia_smi_a100x2_compute_apps.csv"
V100 = RECORDED / "recorded_nvidia_smi_v100x4_driver418_query_gpu.csv"
V100_APPS = RECORDED / "recorded_nvidia_smi_v100x4_driver418_compute_apps.csv"
LAPTOP = RECORDED / "recorded_nvidia_smi_rtx3050laptop_query_gpu.csv"
LAPTOP_APPS = RECORDED / "recorded_nvidia_smi_rtx3050laptop_compute_apps.csv"

A100_GPU0 = GpuSample(
    index=0,
    name="NVIDIA A100-SXM4-80GB",
    uuid="GPU-4b9a3e5c-1f7d-2a6e-93b1-0c8d5f2e7a41",
    utilization_pct=100,
    memory_used_mib=40397,
    memory_total_mib=81920,
    temperature_c=62,
    power_draw_w=312.45,
    power_limit_w=400.0,
    fan_pct=None,
    sm_clock_mhz=1410,
    processes=[GpuProcess(pid=2412871, gpu_memory_mib=40391, command="/opt/conda/bin/python")],
)


def first_block(path: Path) -> str:
    return "".join(path.read_text().splitlines(keepends=True)[:2])


def test_a100_block_with_processes_field_for_field() -> None:
    table = gpus_from_smi(first_block(A100_LMS), A100_APPS.read_text())

    assert table.driver_version == "535.104.05"
    assert table.unparsed == []
    assert table.gpus[0] == A100_GPU0
    assert table.gpus[1] == GpuSample(
        index=1,
        name="NVIDIA A100-SXM4-80GB",
        uuid="GPU-e07c6d19-8b52-4f3a-a6d0-7e15c9b3f208",
        utilization_pct=0,
        memory_used_mib=4,
        memory_total_mib=81920,
        temperature_c=33,
        power_draw_w=61.23,
        power_limit_w=400.0,
        fan_pct=None,
        sm_clock_mhz=210,
        processes=[],
    )


def test_not_supported_and_unknown_error_are_none() -> None:
    table = gpus_from_smi(V100.read_text(), V100_APPS.read_text())

    assert [g.fan_pct for g in table.gpus] == [None] * 4  # [Not Supported]
    assert [g.utilization_pct for g in table.gpus] == [0, 72, 71, None]  # [Unknown Error]
    broken = table.gpus[3]
    assert (broken.temperature_c, broken.power_draw_w, broken.sm_clock_mhz) == (None, None, None)
    assert (broken.memory_total_mib, broken.power_limit_w) == (16160, 300.0)
    assert [p.pid for g in table.gpus for p in g.processes] == [18842, 18843]
    assert table.gpus[1].processes == [
        GpuProcess(pid=18842, gpu_memory_mib=15426, command="python")
    ]


def test_laptop_power_and_process_memory_not_available() -> None:
    table = gpus_from_smi(LAPTOP.read_text(), LAPTOP_APPS.read_text())

    (gpu,) = table.gpus
    assert (gpu.power_draw_w, gpu.power_limit_w, gpu.fan_pct) == (None, None, None)
    assert (gpu.utilization_pct, gpu.memory_total_mib, gpu.temperature_c) == (3, 4096, 45)
    assert gpu.processes == [GpuProcess(pid=2954, gpu_memory_mib=None, command="/usr/bin/python3")]
    assert table.driver_version == "550.67"


@pytest.mark.parametrize("missing", ["[N/A]", "[Not Supported]", "N/A", "[Unknown Error]", ""])
def test_every_missing_marker_is_none(missing: str) -> None:
    m = missing
    row = f"0, GPU X, GPU-1, {m}, 10, 100, {m}, {m}, 70.00, {m}, 900, {m}"
    table = parse_gpu_csv(row)
    assert table.driver_version is None
    (gpu,) = table.gpus
    assert (gpu.utilization_pct, gpu.temperature_c, gpu.power_draw_w, gpu.fan_pct) == (
        None,
        None,
        None,
        None,
    )
    assert (gpu.memory_used_mib, gpu.power_limit_w, gpu.sm_clock_mhz) == (10, 70.0, 900)


def test_messages_between_rows_are_kept_aside_and_units_tolerated() -> None:
    text = (
        "Unable to determine the device handle for GPU0000:3B:00.0: Unknown Error\n"
        "1, NVIDIA A10, GPU-2, 5 %, 100 MiB, 23028 MiB, 40, 60.10 W, 150.00 W, 0 %, 1695 MHz,"
        " 550.54\n"
    )
    table = parse_gpu_csv(text)
    assert table.unparsed == [
        "Unable to determine the device handle for GPU0000:3B:00.0: Unknown Error"
    ]
    (gpu,) = table.gpus
    assert (gpu.index, gpu.utilization_pct, gpu.memory_total_mib, gpu.power_draw_w) == (
        1,
        5,
        23028,
        60.1,
    )


def test_a_process_name_may_hold_commas() -> None:
    apps = parse_apps_csv("GPU-1, 77, 1024, python train.py --tags a,b\nnot a row\n")
    assert apps == {
        "GPU-1": [GpuProcess(pid=77, gpu_memory_mib=1024, command="python train.py --tags a,b")]
    }


def test_loop_output_is_cut_into_blocks() -> None:
    lines = A100_LMS.read_text().splitlines()

    by_wrap = GpuBlockAssembler()
    blocks = [block for line in lines for block in by_wrap.feed(line)]
    assert [len(b.gpus) for b in blocks] == [2, 2]  # the third waits for the next wrap
    assert [b.gpus[0].power_draw_w for b in blocks] == [312.45, 305.12]

    by_count = GpuBlockAssembler(gpu_count=2)
    blocks = [block for line in lines for block in by_count.feed(line)]
    assert [b.gpus[0].power_draw_w for b in blocks] == [312.45, 305.12, 318.77]
    assert all(b.driver_version == "535.104.05" for b in blocks)


def test_smi_status_reads_the_usual_failures() -> None:
    assert smi_status(0, "") == "ok"
    assert smi_status(127, "bash: nvidia-smi: command not found") == (
        "no NVIDIA driver (nvidia-smi not found)"
    )
    failed = (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
        "Make sure that the latest NVIDIA driver is installed and running.\n"
    )
    assert smi_status(9, failed) == "NVIDIA driver not loaded"
    assert smi_status(6, "No devices were found\n") == "no NVIDIA GPU found"
    assert smi_status(18, "Failed to initialize NVML: Driver/library version mismatch\n") == (
        "NVIDIA driver and library versions differ (reboot)"
    )
    assert smi_status(3, "Something else\nmore") == "nvidia-smi failed: Something else"


def test_sample_from_smi_round_trips() -> None:
    sample = sample_from_smi(
        1718000000.5, first_block(A100_LMS), A100_APPS.read_text(), hostname="a100-box"
    )
    assert sample.source == "nvidia-smi"
    assert sample.gpus_ok and sample.gpus[0] == A100_GPU0
    assert HostSample.from_json(sample.to_json()) == sample
    assert sample_from_smi(1.0, "").gpu_status == "no NVIDIA GPU found"


# The recorded nvidia-smi on PATH -----------------------------------------------------------


def smi_env(recording: str = "a100x2") -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{FAKE_BIN}:{os.environ['PATH']}",
        "NVIDIA_SMI_RECORDING": recording,
    }


def run_smi(argv: list[str], recording: str = "a100x2") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, env=smi_env(recording), timeout=30, check=False
    )


def test_recorded_nvidia_smi_knows_the_fields_the_parser_asks_for() -> None:
    script = runpy.run_path(str(FAKE_BIN / "nvidia-smi"), run_name="recorded_nvidia_smi")
    assert ",".join(script["GPU_FIELDS"]) == GPU_QUERY_FIELDS
    assert ",".join(script["APPS_FIELDS"]) == APPS_QUERY_FIELDS


def test_recorded_nvidia_smi_answers_the_parser_commands() -> None:
    gpus = run_smi(smi_gpu_command())
    apps = run_smi(smi_apps_command())
    listing = run_smi(["nvidia-smi", "-L"])

    assert gpus.returncode == apps.returncode == listing.returncode == 0
    assert gpus.stdout == first_block(A100_LMS)
    assert apps.stdout == A100_APPS.read_text()
    assert listing.stdout.splitlines()[1] == (
        "GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-e07c6d19-8b52-4f3a-a6d0-7e15c9b3f208)"
    )
    assert gpus_from_smi(gpus.stdout, apps.stdout).gpus[0] == A100_GPU0

    v100 = run_smi(smi_gpu_command(), recording="v100x4_driver418")
    assert v100.stdout == V100.read_text()


def test_recorded_nvidia_smi_selects_fields_and_rejects_unknown_ones() -> None:
    picked = run_smi(
        ["nvidia-smi", "--query-gpu=utilization.gpu,index", "--format=csv,noheader,nounits"]
    )
    assert picked.stdout == "100, 0\n0, 1\n"

    bogus = run_smi(["nvidia-smi", "--query-gpu=index,bogus", "--format=csv,noheader,nounits"])
    assert bogus.returncode == 2
    assert 'Field "bogus" is not a valid field to query.' in bogus.stdout


def test_recorded_nvidia_smi_loops_like_lms() -> None:
    process = subprocess.Popen(
        smi_gpu_command(loop_ms=50),
        stdout=subprocess.PIPE,
        text=True,
        env=smi_env(),
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(8)]
    finally:
        process.kill()
        process.wait()
    recorded = A100_LMS.read_text().splitlines(keepends=True)
    assert lines == recorded + recorded[:2]  # three recorded ticks, then over again
    assembler = GpuBlockAssembler(gpu_count=2)
    blocks = [b for line in lines for b in assembler.feed(line)]
    assert len(blocks) == 4
