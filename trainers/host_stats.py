"""The host half of a sample: CPU, memory, disk and network through psutil, and who runs a pid.

psutil is imported only when a reading is taken, so that the sampler starts without it.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from trainers.nvml import MIB
from trainers.protocol.gpu_sample import HostStats


def describe_process(pid: int) -> tuple[str | None, str | None]:
    """User and command line of ``pid``; None for what this host will not show (other
    namespaces, as in most rented containers, or a process that just ended)."""
    import psutil

    try:
        process = psutil.Process(pid)
    except psutil.Error:
        return None, None
    user: str | None
    command: str | None
    try:
        user = process.username()
    except (psutil.Error, KeyError):
        user = None
    try:
        command = " ".join(process.cmdline()) or process.name()
    except psutil.Error:
        command = None
    return user, command


class HostReader:
    """psutil reads of the host; CPU % and network rates come from the previous reading."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._net: tuple[float, int, int] | None = None
        self._cpu_primed = False

    def prime(self) -> None:
        """Take the first counter readings, so that the next ``read`` can give rates."""
        import psutil

        psutil.cpu_percent(interval=None)
        self._cpu_primed = True
        self._net = self._net_counters()

    @staticmethod
    def _net_counters() -> tuple[float, int, int] | None:
        import psutil

        try:
            counters = psutil.net_io_counters(pernic=True)
        except (OSError, RuntimeError):
            return None
        rx = sum(c.bytes_recv for nic, c in counters.items() if nic != "lo")
        tx = sum(c.bytes_sent for nic, c in counters.items() if nic != "lo")
        return time.monotonic(), rx, tx

    def read(self) -> HostStats:
        import psutil

        stats = HostStats(cpu_count=os.cpu_count())
        cpu = psutil.cpu_percent(interval=None)
        stats.cpu_pct = round(cpu, 1) if self._cpu_primed else None
        self._cpu_primed = True
        with contextlib.suppress(OSError):
            stats.load_1, stats.load_5, stats.load_15 = (round(x, 2) for x in os.getloadavg())
        try:
            memory = psutil.virtual_memory()
            stats.ram_total_mib = memory.total // MIB
            stats.ram_used_mib = (memory.total - memory.available) // MIB
        except (OSError, RuntimeError):
            pass
        stats.disk_path = str(self.workdir)
        try:
            disk = psutil.disk_usage(str(self.workdir))
            stats.disk_free_mib, stats.disk_total_mib = disk.free // MIB, disk.total // MIB
        except OSError:
            pass
        net = self._net_counters()
        if net is not None and self._net is not None and net[0] > self._net[0]:
            elapsed = net[0] - self._net[0]
            stats.net_rx_bps = round(max(0, net[1] - self._net[1]) / elapsed, 1)
            stats.net_tx_bps = round(max(0, net[2] - self._net[2]) / elapsed, 1)
        self._net = net
        return stats
