"""The telemetry line format: one ``HostSample`` per JSON line.

``python -m trainers.gpu --json`` writes these lines on the GPU host; the laptop reads them back
with ``HostSample.from_json``, and builds the same objects itself from ``nvidia-smi`` and ``/proc``
text (``protocol.smi``) when the sampler is not installed. This module is stdlib-only so that
transfer/ can import it without torch, psutil or pynvml.

Schema (version ``SCHEMA_VERSION``); every metric may be ``null`` ("N/A": not readable here)::

    {
      "schema": 1,                       # bumped on an incompatible change
      "timestamp": 1718000000.123,       # Unix seconds when the sample was taken
      "hostname": "gpu-box",
      "source": "nvml",                  # "nvml" (the sampler) or "nvidia-smi" (built remotely)
      "gpu_status": "ok",                # or why there are no GPUs, e.g.
                                         # "no NVIDIA driver (libnvidia-ml.so.1 not found)"
      "driver_version": "535.104.05",
      "gpus": [{
        "index": 0, "name": "NVIDIA A100-SXM4-80GB", "uuid": "GPU-…",
        "utilization_pct": 100,          # % of the last sample period a kernel ran
        "memory_used_mib": 40397, "memory_total_mib": 81920,
        "temperature_c": 62,
        "power_draw_w": 312.456, "power_limit_w": 400.0,
        "fan_pct": null,                 # passively cooled data-centre cards have no fan
        "sm_clock_mhz": 1410,
        "processes": [{"pid": 4242, "user": "alice", "gpu_memory_mib": 40390,
                       "command": "python train.py"}]
      }],
      "host": {
        "cpu_pct": 12.5, "cpu_count": 64,  # cpu_pct needs two readings: null on the first
        "load_1": 0.52, "load_5": 0.58, "load_15": 0.59,
        "ram_used_mib": 12040, "ram_total_mib": 515858,  # used = total - available
        "disk_path": "/workspace", "disk_free_mib": 1203400, "disk_total_mib": 2015000,
        "net_rx_bps": 1250000.0, "net_tx_bps": 3400.0    # all interfaces but lo; null on the first
      }
    }

Readers ignore keys they do not know, so adding a field does not bump the version.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1

#: ``gpu_status`` when the GPUs were read.
GPU_STATUS_OK = "ok"


class SampleFormatError(ValueError):
    """A telemetry line that is not a sample of a schema this code understands."""


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SampleFormatError(f"{key}: expected a number, got {value!r}")
    return int(value)


def _opt_float(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SampleFormatError(f"{key}: expected a number, got {value!r}")
    return float(value)


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SampleFormatError(f"{key}: expected a string, got {value!r}")
    return value


def _req(value: Any, key: str) -> Any:
    if value is None:
        raise SampleFormatError(f"{key}: missing")
    return value


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SampleFormatError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SampleFormatError(f"{what}: expected a list, got {type(value).__name__}")
    return value


@dataclass
class GpuProcess:
    """A process that holds memory on a GPU."""

    pid: int
    user: str | None = None
    gpu_memory_mib: int | None = None
    command: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GpuProcess:
        data = _obj(data, "process")
        return cls(
            pid=_req(_opt_int(data, "pid"), "pid"),
            user=_opt_str(data, "user"),
            gpu_memory_mib=_opt_int(data, "gpu_memory_mib"),
            command=_opt_str(data, "command"),
        )


@dataclass
class GpuSample:
    """One GPU at one moment, in the units people read: %, MiB, °C, W, MHz."""

    index: int
    name: str | None = None
    uuid: str | None = None
    utilization_pct: int | None = None
    memory_used_mib: int | None = None
    memory_total_mib: int | None = None
    temperature_c: int | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    fan_pct: int | None = None
    sm_clock_mhz: int | None = None
    processes: list[GpuProcess] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GpuSample:
        data = _obj(data, "gpu")
        return cls(
            index=_req(_opt_int(data, "index"), "index"),
            name=_opt_str(data, "name"),
            uuid=_opt_str(data, "uuid"),
            utilization_pct=_opt_int(data, "utilization_pct"),
            memory_used_mib=_opt_int(data, "memory_used_mib"),
            memory_total_mib=_opt_int(data, "memory_total_mib"),
            temperature_c=_opt_int(data, "temperature_c"),
            power_draw_w=_opt_float(data, "power_draw_w"),
            power_limit_w=_opt_float(data, "power_limit_w"),
            fan_pct=_opt_int(data, "fan_pct"),
            sm_clock_mhz=_opt_int(data, "sm_clock_mhz"),
            processes=[GpuProcess.from_dict(p) for p in _list(data.get("processes"), "processes")],
        )


@dataclass
class HostStats:
    """The host around the GPUs: what starves a training run when the GPUs look idle."""

    cpu_pct: float | None = None
    cpu_count: int | None = None
    load_1: float | None = None
    load_5: float | None = None
    load_15: float | None = None
    ram_used_mib: int | None = None
    ram_total_mib: int | None = None
    disk_path: str | None = None
    disk_free_mib: int | None = None
    disk_total_mib: int | None = None
    net_rx_bps: float | None = None
    net_tx_bps: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostStats:
        data = _obj(data, "host")
        return cls(
            cpu_pct=_opt_float(data, "cpu_pct"),
            cpu_count=_opt_int(data, "cpu_count"),
            load_1=_opt_float(data, "load_1"),
            load_5=_opt_float(data, "load_5"),
            load_15=_opt_float(data, "load_15"),
            ram_used_mib=_opt_int(data, "ram_used_mib"),
            ram_total_mib=_opt_int(data, "ram_total_mib"),
            disk_path=_opt_str(data, "disk_path"),
            disk_free_mib=_opt_int(data, "disk_free_mib"),
            disk_total_mib=_opt_int(data, "disk_total_mib"),
            net_rx_bps=_opt_float(data, "net_rx_bps"),
            net_tx_bps=_opt_float(data, "net_tx_bps"),
        )


@dataclass
class HostSample:
    """Everything one telemetry line says about a host."""

    timestamp: float
    gpu_status: str = GPU_STATUS_OK
    hostname: str | None = None
    source: str = "nvml"
    driver_version: str | None = None
    gpus: list[GpuSample] = field(default_factory=list)
    host: HostStats = field(default_factory=HostStats)
    schema: int = SCHEMA_VERSION

    @property
    def gpus_ok(self) -> bool:
        return self.gpu_status == GPU_STATUS_OK

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # Schema first so that a person reading the raw line sees it.
        return {"schema": data.pop("schema"), **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostSample:
        data = _obj(data, "sample")
        schema = _req(_opt_int(data, "schema"), "schema")
        if schema != SCHEMA_VERSION:
            raise SampleFormatError(
                f"telemetry schema {schema} is not the supported {SCHEMA_VERSION}"
                " (update gputui on one side)"
            )
        return cls(
            schema=schema,
            timestamp=_req(_opt_float(data, "timestamp"), "timestamp"),
            gpu_status=_opt_str(data, "gpu_status") or GPU_STATUS_OK,
            hostname=_opt_str(data, "hostname"),
            source=_opt_str(data, "source") or "nvml",
            driver_version=_opt_str(data, "driver_version"),
            gpus=[GpuSample.from_dict(g) for g in _list(data.get("gpus"), "gpus")],
            host=HostStats.from_dict(data.get("host") or {}),
        )

    @classmethod
    def from_json(cls, line: str | bytes) -> HostSample:
        try:
            data = json.loads(line)
        except ValueError as error:
            raise SampleFormatError(f"not a JSON telemetry line: {error}") from None
        return cls.from_dict(data)
