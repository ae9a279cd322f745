"""The telemetry line format that trainers.gpu writes and the laptop reads."""

from __future__ import annotations

import json

import pytest

from trainers.protocol.gpu_sample import (
    SCHEMA_VERSION,
    GpuProcess,
    GpuSample,
    HostSample,
    HostStats,
    SampleFormatError,
)


def full_sample() -> HostSample:
    return HostSample(
        timestamp=1718000000.123,
        hostname="gpu-box",
        driver_version="535.104.05",
        gpus=[
            GpuSample(
                index=0,
                name="NVIDIA A100-SXM4-80GB",
                uuid="GPU-1",
                utilization_pct=97,
                memory_used_mib=40397,
                memory_total_mib=81920,
                temperature_c=62,
                power_draw_w=312.456,
                power_limit_w=400.0,
                fan_pct=None,
                sm_clock_mhz=1410,
                processes=[GpuProcess(4242, "alice", 40390, "python train.py")],
            )
        ],
        host=HostStats(cpu_pct=12.5, cpu_count=64, load_1=0.5, ram_total_mib=515858),
    )


def test_round_trip_keeps_every_field() -> None:
    sample = full_sample()
    line = sample.to_json()

    assert "\n" not in line
    assert line.startswith('{"schema":1,')
    assert HostSample.from_json(line) == sample
    assert json.loads(line)["gpus"][0]["fan_pct"] is None


def test_unknown_keys_are_ignored_and_missing_metrics_are_none() -> None:
    data = json.loads(full_sample().to_json())
    data["added_later"] = {"x": 1}
    data["gpus"][0]["pcie_rx"] = 5
    del data["gpus"][0]["temperature_c"]
    del data["host"]

    sample = HostSample.from_dict(data)

    assert sample.gpus[0].temperature_c is None
    assert sample.host == HostStats()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": SCHEMA_VERSION + 1}, "telemetry schema 2 is not the supported 1"),
        ({"timestamp": None}, "timestamp: missing"),
        ({"gpus": [{"name": "x"}]}, "index: missing"),
        ({"gpus": [{"index": 0, "utilization_pct": "97"}]}, "utilization_pct: expected a number"),
        ({"gpus": "none"}, "gpus: expected a list"),
    ],
)
def test_bad_lines_raise_one_clear_error(change: dict[str, object], message: str) -> None:
    data = {**json.loads(full_sample().to_json()), **change}
    with pytest.raises(SampleFormatError, match=message):
        HostSample.from_dict(data)


def test_not_json_is_a_format_error() -> None:
    with pytest.raises(SampleFormatError, match="not a JSON telemetry line"):
        HostSample.from_json("nvidia-smi: command not found")
