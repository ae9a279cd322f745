"""The NVML wrapper and the sampler, replaying recorded driver answers."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from gpu_nvml_replay import ReplayedNvml, load_recording

from trainers.gpu import Sampler
from trainers.host_stats import describe_process
from trainers.nvml import NO_GPU_STATUS, NO_PYNVML_STATUS, NVML_RETRY_S, Nvml
from trainers.nvml_record import record_nvml
from trainers.protocol.gpu_sample import GpuProcess, GpuSample, HostSample
from trainers.protocol.sample_text import format_human

ReplayFactory = Callable[..., ReplayedNvml]


def no_owner(pid: int) -> tuple[str | None, str | None]:
    return None, None


def test_a100_recording_reads_field_for_field(replay_nvml: ReplayFactory) -> None:
    replay_nvml("recorded_nvml_a100x2.json")
    nvml = Nvml()

    gpus = nvml.read_gpus(no_owner)

    assert nvml.status == "ok"
    assert nvml.driver_version() == "535.104.05"
    assert gpus == [
        GpuSample(
            index=0,
            name="NVIDIA A100-SXM4-80GB",
            uuid="GPU-4b9a3e5c-1f7d-2a6e-93b1-0c8d5f2e7a41",
            utilization_pct=100,
            memory_used_mib=40397,
            memory_total_mib=81920,
            temperature_c=62,
            power_draw_w=312.456,
            power_limit_w=400.0,
            fan_pct=None,  # NVMLError_NotSupported: passively cooled
            sm_clock_mhz=1410,
            processes=[GpuProcess(pid=2412871, gpu_memory_mib=40391)],
        ),
        GpuSample(
            index=1,
            name="NVIDIA A100-SXM4-80GB",
            uuid="GPU-e07c6d19-8b52-4f3a-a6d0-7e15c9b3f208",
            utilization_pct=0,
            memory_used_mib=4,
            memory_total_mib=81920,
            temperature_c=33,
            power_draw_w=61.234,
            power_limit_w=400.0,
            fan_pct=None,
            sm_clock_mhz=210,
            processes=[],
        ),
    ]


def test_h100_and_rtx3090_recordings(replay_nvml: ReplayFactory) -> None:
    replay_nvml("recorded_nvml_h100x1.json")
    (h100,) = Nvml().read_gpus(no_owner)
    assert (h100.name, h100.memory_total_mib, h100.memory_used_mib) == (
        "NVIDIA H100 80GB HBM3",
        81559,
        71234,
    )
    assert (h100.power_draw_w, h100.power_limit_w, h100.fan_pct) == (645.123, 700.0, None)

    replay_nvml("recorded_nvml_rtx3090x1.json")
    (rtx,) = Nvml().read_gpus(no_owner)
    assert (rtx.name, rtx.fan_pct, rtx.temperature_c, rtx.sm_clock_mhz) == (
        "NVIDIA GeForce RTX 3090",
        67,
        71,
        1860,
    )
    # Compute and graphics clients in one list, by pid; gnome-shell's memory is not available.
    assert rtx.processes == [
        GpuProcess(pid=1423, gpu_memory_mib=212),
        GpuProcess(pid=2288, gpu_memory_mib=None),
        GpuProcess(pid=31337, gpu_memory_mib=17853),
    ]


def test_process_owner_and_command_come_from_the_host(replay_nvml: ReplayFactory) -> None:
    recording = load_recording("recorded_nvml_a100x2.json")
    recording["devices"][0]["nvmlDeviceGetComputeRunningProcesses"][0]["pid"] = os.getpid()
    replay_nvml(recording)

    gpus = Nvml().read_gpus(describe_process)

    (process,) = gpus[0].processes
    me = psutil.Process()
    assert process.pid == os.getpid()
    assert process.user == me.username()
    assert process.command == " ".join(me.cmdline())


def test_a_pid_from_another_namespace_has_no_owner() -> None:
    # pid_max is at most 2**22 on Linux, so this pid cannot exist here.
    assert describe_process(2**22 + 17) == (None, None)


def test_a_call_missing_from_the_driver_falls_back_once_then_is_skipped(
    replay_nvml: ReplayFactory,
) -> None:
    recording = load_recording("recorded_nvml_rtx3090x1.json")
    device = recording["devices"][0]
    device["nvmlDeviceGetTemperature"] = {"nvml_error": "NVMLError_FunctionNotFound"}
    device["nvmlDeviceGetComputeRunningProcesses"] = {"nvml_error": "NVMLLibraryMismatchError"}
    fake = replay_nvml(recording)
    nvml = Nvml()

    first = nvml.read_gpus(no_owner)
    second = nvml.read_gpus(no_owner)

    assert first == second
    assert first[0].temperature_c == 71  # from nvmlDeviceGetTemperatureV
    assert [p.pid for p in first[0].processes] == [1423, 2288, 31337]  # from the _v2 call
    assert fake.calls.count("nvmlDeviceGetTemperature") == 1
    assert fake.calls.count("nvmlDeviceGetTemperatureV") == 2
    assert fake.calls.count("nvmlDeviceGetComputeRunningProcesses") == 1
    assert fake.inits == 1


def test_a_lost_gpu_gives_none_fields_and_the_others_still_read(
    replay_nvml: ReplayFactory,
) -> None:
    recording = load_recording("recorded_nvml_a100x2.json")
    lost = {"nvml_error": "NVMLError_GpuIsLost"}
    recording["devices"][1] = {name: lost for name in recording["devices"][1]}
    replay_nvml(recording)

    gpus = Nvml().read_gpus(no_owner)

    assert gpus[0].utilization_pct == 100
    assert gpus[1] == GpuSample(index=1)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("NVMLError_LibraryNotFound", "no NVIDIA driver (libnvidia-ml.so.1 not found)"),
        ("NVMLError_DriverNotLoaded", "NVIDIA driver not loaded"),
        (
            "NVMLError_LibRmVersionMismatch",
            "NVIDIA driver and library versions differ (reload the driver or reboot)",
        ),
        ("NVMLError_Unknown", "NVML error: NVMLError_Unknown"),
    ],
)
def test_nvml_that_cannot_start_gives_a_status(
    replay_nvml: ReplayFactory, error: str, status: str, tmp_path: Path
) -> None:
    fake = replay_nvml("recorded_nvml_a100x2.json", init_error=error)
    fake._error_class(error).__str__ = lambda self: type(self).__name__  # type: ignore[method-assign]

    sample = Sampler(tmp_path).sample()

    assert sample.gpu_status == status
    assert sample.gpus == []
    assert sample.driver_version is None
    assert sample.host.ram_total_mib == psutil.virtual_memory().total // 2**20


def test_zero_devices_and_no_pynvml(
    replay_nvml: ReplayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = load_recording("recorded_nvml_a100x2.json")
    recording["system"]["nvmlDeviceGetCount"] = 0
    replay_nvml(recording)
    nvml = Nvml()
    assert nvml.read_gpus(no_owner) == []
    assert nvml.status == NO_GPU_STATUS

    recording["system"]["nvmlDeviceGetCount"] = {"nvml_error": "NVMLError_Unknown"}
    replay_nvml(recording)
    nvml = Nvml()
    assert nvml.read_gpus(no_owner) == []
    assert nvml.status == "NVML could not count the GPUs"

    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml now raises ImportError
    nvml = Nvml()
    assert nvml.read_gpus(no_owner) == []
    assert nvml.status == NO_PYNVML_STATUS


def test_nvml_start_is_retried_only_after_a_pause(replay_nvml: ReplayFactory) -> None:
    fake = replay_nvml("recorded_nvml_a100x2.json", init_error="NVMLError_DriverNotLoaded")
    now = [1000.0]
    nvml = Nvml(clock=lambda: now[0])

    for _ in range(5):
        assert nvml.read_gpus(no_owner) == []
    assert fake.inits == 1

    fake.init_error = None  # the driver came back
    now[0] += NVML_RETRY_S
    assert len(nvml.read_gpus(no_owner)) == 2
    assert nvml.status == "ok"
    assert fake.inits == 2


def test_real_pynvml_on_this_machine_reports_why_there_is_no_gpu() -> None:
    """The wrapper around the installed pynvml: no driver here, or real GPUs where there is."""
    import ctypes

    try:
        ctypes.CDLL("libnvidia-ml.so.1")
        has_driver = True
    except OSError:
        has_driver = False
    nvml = Nvml()
    gpus = nvml.read_gpus(no_owner)
    if has_driver:
        assert nvml.status in ("ok", NO_GPU_STATUS)
        assert all(g.memory_total_mib for g in gpus)
    else:
        assert gpus == []
        assert nvml.status == "no NVIDIA driver (libnvidia-ml.so.1 not found)"
    nvml.close()


def test_sample_round_trips_and_reads_for_people(
    replay_nvml: ReplayFactory, tmp_path: Path
) -> None:
    replay_nvml("recorded_nvml_a100x2.json")
    sampler = Sampler(tmp_path)
    sampler.prime()

    sample = sampler.sample()

    assert sample.gpu_status == "ok"
    assert sample.driver_version == "535.104.05"
    assert HostSample.from_json(sample.to_json()) == sample
    assert sample.host.disk_path == str(tmp_path)
    assert sample.host.cpu_pct is not None
    text = format_human(sample)
    assert "GPU 0  NVIDIA A100-SXM4-80GB  util 100%  mem 40397 / 81920 MiB  62°C" in text
    assert "power 312 / 400 W  fan N/A  sm 1410 MHz" in text
    assert "pid 2412871  N/A  40391 MiB  N/A" in text


def test_the_recorder_writes_what_the_replay_reads(
    replay_nvml: ReplayFactory, tmp_path: Path
) -> None:
    """``--record-nvml`` on a GPU host makes a new recording; replaying it gives the same GPUs."""
    source = replay_nvml("recorded_nvml_rtx3090x1.json")
    expected = Nvml().read_gpus(no_owner)

    path = tmp_path / "recorded_nvml_new.json"
    record_nvml(path, load=lambda: source)
    recording = json.loads(path.read_text())

    assert recording["recording"] == "nvml"
    assert recording["system"]["nvmlSystemGetDriverVersion"] == "570.133.07"
    assert recording["devices"][0]["nvmlDeviceGetMemoryInfo"]["total"] == 24576 * 2**20
    replay_nvml(recording)
    assert Nvml().read_gpus(no_owner) == expected
