"""The GPU sample's text form: what ``python -m trainers.gpu --once`` and ``gputui gpu`` print."""

from __future__ import annotations

import time

from trainers.protocol.gpu_sample import HostSample


def _na(value: object, unit: str = "", spec: str = "") -> str:
    if value is None:
        return "N/A"
    return f"{value:{spec}}{unit}"


def _size(mib: int | None) -> str:
    if mib is None:
        return "N/A"
    if mib >= 1024 * 1024:
        return f"{mib / 1024 / 1024:.1f} TiB"
    if mib >= 1024:
        return f"{mib / 1024:.1f} GiB"
    return f"{mib} MiB"


def _rate(bps: float | None) -> str:
    if bps is None:
        return "N/A"
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.1f} {unit}"
    return f"{bps:.0f} B/s"


def format_human(sample: HostSample) -> str:
    """A few lines a person can read in a terminal, N/A for what could not be read."""
    h = sample.host
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sample.timestamp))
    lines = [
        f"{sample.hostname or 'host'}  {when}",
        f"  cpu {_na(h.cpu_pct, '%', '.1f')} of {_na(h.cpu_count)} cores   "
        f"load {_na(h.load_1, '', '.2f')} {_na(h.load_5, '', '.2f')} {_na(h.load_15, '', '.2f')}",
        f"  ram {_size(h.ram_used_mib)} / {_size(h.ram_total_mib)}   "
        f"disk free {_size(h.disk_free_mib)} of {_size(h.disk_total_mib)} at {h.disk_path}",
        f"  net rx {_rate(h.net_rx_bps)}  tx {_rate(h.net_tx_bps)}",
    ]
    if not sample.gpus:
        lines.append(f"  GPUs: {sample.gpu_status}")
    elif sample.driver_version:
        lines.append(f"  driver {sample.driver_version}")
    for gpu in sample.gpus:
        lines.append(
            f"  GPU {gpu.index}  {gpu.name or 'N/A'}  util {_na(gpu.utilization_pct, '%')}  "
            f"mem {_na(gpu.memory_used_mib)} / {_na(gpu.memory_total_mib)} MiB  "
            f"{_na(gpu.temperature_c, '°C')}  "
            f"power {_na(gpu.power_draw_w, '', '.0f')} / {_na(gpu.power_limit_w, ' W', '.0f')}  "
            f"fan {_na(gpu.fan_pct, '%')}  sm {_na(gpu.sm_clock_mhz, ' MHz')}"
        )
        for process in gpu.processes:
            lines.append(
                f"      pid {process.pid}  {process.user or 'N/A'}  "
                f"{_na(process.gpu_memory_mib, ' MiB')}  {process.command or 'N/A'}"
            )
    return "\n".join(lines)
