"""Telemetry from a bare host: parse ``nvidia-smi`` CSV and a ``/proc`` snapshot into samples.

When the sampler is not installed on a rented host, the laptop runs ``smi_gpu_command()``
(optionally in its ``-lms`` loop mode), ``smi_apps_command()`` and ``proc_command(workdir)``
over SSH and hands the text here. The results are the same ``protocol.gpu_sample`` objects that
``python -m trainers.gpu`` writes, so the panels cannot tell the two sources apart.

Stdlib-only: the laptop imports this module.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from trainers.protocol.gpu_sample import (
    GPU_STATUS_OK,
    GpuProcess,
    GpuSample,
    HostSample,
    HostStats,
)

#: The ``--query-gpu`` fields, in the order the parser reads them.
GPU_QUERY_FIELDS = (
    "index,name,uuid,utilization.gpu,memory.used,memory.total,temperature.gpu,"
    "power.draw,power.limit,fan.speed,clocks.sm,driver_version"
)
#: The ``--query-compute-apps`` fields, in the order the parser reads them.
APPS_QUERY_FIELDS = "gpu_uuid,pid,used_memory,process_name"
CSV_FORMAT = "csv,noheader,nounits"

#: Everything the laptop needs from ``/proc`` in one round trip; ``{workdir}`` is shell-quoted.
PROC_COMMAND = "cat /proc/loadavg /proc/meminfo /proc/stat /proc/net/dev; df -Pk {workdir}"

_GPU_COLUMNS = len(GPU_QUERY_FIELDS.split(","))


def smi_gpu_command(loop_ms: int | None = None) -> list[str]:
    """argv for the GPU table; with ``loop_ms`` nvidia-smi repeats it every ``loop_ms`` ms."""
    argv = ["nvidia-smi", f"--query-gpu={GPU_QUERY_FIELDS}", f"--format={CSV_FORMAT}"]
    return [*argv, f"--loop-ms={loop_ms}"] if loop_ms else argv


def smi_apps_command() -> list[str]:
    """argv for the compute processes on every GPU."""
    return ["nvidia-smi", f"--query-compute-apps={APPS_QUERY_FIELDS}", f"--format={CSV_FORMAT}"]


def proc_command(workdir: str = "~") -> str:
    """``PROC_COMMAND`` for ``workdir``; a leading ``~`` still expands on the host."""
    if workdir == "~" or workdir.startswith("~/"):
        rest = workdir[2:]
        quoted = '"$HOME"' + ("/" + shlex.quote(rest) if rest else "")
    else:
        quoted = shlex.quote(workdir)
    return PROC_COMMAND.format(workdir=quoted)


# nvidia-smi CSV ----------------------------------------------------------------------------

_UNITS = (" MiB", " W", " %", " MHz", " C")


def _value(text: str) -> str | None:
    """One CSV cell; ``[N/A]``, ``[Not Supported]``, ``[Unknown Error]`` and the like are None."""
    text = text.strip()
    if not text or text == "N/A" or (text.startswith("[") and text.endswith("]")):
        return None
    for unit in _UNITS:  # tolerate output taken without ``nounits``
        if text.endswith(unit):
            return text[: -len(unit)].strip()
    return text


def _int(text: str) -> int | None:
    value = _value(text)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        try:
            return int(float(value))
        except ValueError:
            return None


def _float(text: str) -> float | None:
    value = _value(text)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


@dataclass
class SmiGpuTable:
    """The GPUs in one ``--query-gpu`` block, and the lines that were not GPU rows.

    nvidia-smi interleaves messages such as ``Unable to determine the device handle for GPU…``
    with the rows of the GPUs it can read; they land in ``unparsed``.
    """

    gpus: list[GpuSample] = field(default_factory=list)
    driver_version: str | None = None
    unparsed: list[str] = field(default_factory=list)


def parse_gpu_row(line: str) -> tuple[GpuSample, str | None] | None:
    """One ``GPU_QUERY_FIELDS`` row as a sample and its driver version; None if not a row."""
    cells = line.rstrip("\r\n").split(",")
    if len(cells) < _GPU_COLUMNS:
        return None
    # A name with a comma in it would add cells: the name is everything between the two ends.
    extra = len(cells) - _GPU_COLUMNS
    index = _int(cells[0])
    if index is None:
        return None
    name = _value(",".join(cells[1 : 2 + extra]))
    (uuid, util, used, total, temp, draw, limit, fan, clock, driver) = cells[2 + extra :]
    gpu = GpuSample(
        index=index,
        name=name,
        uuid=_value(uuid),
        utilization_pct=_int(util),
        memory_used_mib=_int(used),
        memory_total_mib=_int(total),
        temperature_c=_int(temp),
        power_draw_w=_float(draw),
        power_limit_w=_float(limit),
        fan_pct=_int(fan),
        sm_clock_mhz=_int(clock),
    )
    return gpu, _value(driver)


def parse_gpu_csv(text: str) -> SmiGpuTable:
    """The output of ``smi_gpu_command()`` (one block) as GPU samples."""
    table = SmiGpuTable()
    for line in text.splitlines():
        if not line.strip():
            continue
        row = parse_gpu_row(line)
        if row is None:
            table.unparsed.append(line.strip())
            continue
        gpu, driver = row
        table.gpus.append(gpu)
        table.driver_version = table.driver_version or driver
    return table


def parse_apps_csv(text: str) -> dict[str, list[GpuProcess]]:
    """The output of ``smi_apps_command()``: processes by GPU uuid. nvidia-smi names no user,
    so ``user`` is None; ``command`` is the executable path it reports."""
    by_uuid: dict[str, list[GpuProcess]] = {}
    for line in text.splitlines():
        # The process name comes last and may itself hold commas.
        cells = line.rstrip("\r\n").split(",", 3)
        if len(cells) != 4:
            continue
        uuid, pid = _value(cells[0]), _int(cells[1])
        if uuid is None or pid is None:
            continue
        process = GpuProcess(pid=pid, gpu_memory_mib=_int(cells[2]), command=_value(cells[3]))
        by_uuid.setdefault(uuid, []).append(process)
    return by_uuid


def gpus_from_smi(gpu_csv: str, apps_csv: str | None = None) -> SmiGpuTable:
    """Both nvidia-smi tables joined on the GPU uuid."""
    table = parse_gpu_csv(gpu_csv)
    if apps_csv:
        apps = parse_apps_csv(apps_csv)
        for gpu in table.gpus:
            gpu.processes = sorted(apps.get(gpu.uuid or "", []), key=lambda p: p.pid)
    return table


class GpuBlockAssembler:
    """Cuts the endless output of ``nvidia-smi -lms`` into one table per tick.

    With ``gpu_count`` known (from ``nvidia-smi -L``) a block is handed out as soon as its last
    row arrives; otherwise it is handed out when the index wraps around, one tick late.
    """

    def __init__(self, gpu_count: int | None = None) -> None:
        self.gpu_count = gpu_count
        self._rows: list[GpuSample] = []
        self._driver: str | None = None
        self._unparsed: list[str] = []

    def _take(self) -> SmiGpuTable:
        table = SmiGpuTable(list(self._rows), self._driver, list(self._unparsed))
        self._rows, self._driver, self._unparsed = [], None, []
        return table

    def feed(self, line: str) -> list[SmiGpuTable]:
        """Add one output line; returns the blocks it completed (zero, or one)."""
        if not line.strip():
            return []
        row = parse_gpu_row(line)
        if row is None:
            self._unparsed.append(line.strip())
            return []
        gpu, driver = row
        done: list[SmiGpuTable] = []
        if self._rows and gpu.index <= self._rows[-1].index:
            done.append(self._take())
        self._rows.append(gpu)
        self._driver = self._driver or driver
        if self.gpu_count is not None and len(self._rows) >= self.gpu_count:
            done.append(self._take())
        return done


_SMI_STATUS = (
    ("couldn't communicate with the nvidia driver", "NVIDIA driver not loaded"),
    ("driver/library version mismatch", "NVIDIA driver and library versions differ (reboot)"),
    ("no devices were found", "no NVIDIA GPU found"),
    ("insufficient permissions", "no permission to open the NVIDIA driver"),
)


def smi_status(returncode: int, output: str) -> str:
    """``gpu_status`` for an nvidia-smi run: ``"ok"`` or why no GPU could be read."""
    if returncode == 127 or "command not found" in output or "No such file" in output:
        return "no NVIDIA driver (nvidia-smi not found)"
    lowered = output.lower()
    for needle, status in _SMI_STATUS:
        if needle in lowered:
            return status
    if returncode != 0:
        first = output.strip().splitlines()[0] if output.strip() else f"exit status {returncode}"
        return f"nvidia-smi failed: {first}"
    return GPU_STATUS_OK


# /proc snapshot ----------------------------------------------------------------------------

_LOADAVG = re.compile(r"^(\d+\.\d+) (\d+\.\d+) (\d+\.\d+) \d+/\d+ \d+$")
_MEMINFO = re.compile(r"^([A-Za-z_()0-9]+):\s+(\d+)(?: kB)?$")
_NETDEV = re.compile(r"^\s*([^\s:]+):\s*((?:\d+\s+){15}\d+)\s*$")
_DF = re.compile(r"^(.+?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+(/.*)$")


@dataclass
class ProcSnapshot:
    """The counters in one ``proc_command()`` output, taken at ``timestamp`` (Unix seconds)."""

    timestamp: float
    load: tuple[float, float, float] | None = None
    meminfo_kib: dict[str, int] = field(default_factory=dict)
    cpu_ticks: tuple[int, ...] | None = None
    cpu_count: int | None = None
    net_bytes: tuple[int, int] | None = None  # received, sent: all interfaces but lo
    disk_total_kib: int | None = None
    disk_free_kib: int | None = None
    disk_mount: str | None = None

    @classmethod
    def parse(cls, text: str, timestamp: float) -> ProcSnapshot:
        """Reads each line by its shape, so the files may come in any order, and a missing
        file (an error on stderr) only leaves its fields None."""
        snapshot = cls(timestamp=timestamp)
        cpus = 0
        rx = tx = 0
        nics = 0
        for line in text.splitlines():
            if snapshot.load is None and (match := _LOADAVG.match(line)):
                a, b, c = (float(x) for x in match.groups())
                snapshot.load = (a, b, c)
            elif line.startswith("cpu"):
                head, *ticks = line.split()
                if head == "cpu":
                    snapshot.cpu_ticks = tuple(int(x) for x in ticks)
                elif head[3:].isdigit():
                    cpus += 1
            elif match := _NETDEV.match(line):
                if match.group(1) != "lo":
                    numbers = match.group(2).split()
                    rx += int(numbers[0])
                    tx += int(numbers[8])
                nics += 1
            elif match := _MEMINFO.match(line):
                snapshot.meminfo_kib[match.group(1)] = int(match.group(2))
            elif (match := _DF.match(line)) and not line.startswith("Filesystem"):
                snapshot.disk_total_kib = int(match.group(2))
                snapshot.disk_free_kib = int(match.group(4))
                snapshot.disk_mount = match.group(6)
        snapshot.cpu_count = cpus or None
        if nics:
            snapshot.net_bytes = (rx, tx)
        return snapshot

    def host_stats(
        self, previous: ProcSnapshot | None = None, workdir: str | None = None
    ) -> HostStats:
        """The host part of a sample; CPU % and network rates need the ``previous`` snapshot."""
        stats = HostStats(cpu_count=self.cpu_count, disk_path=workdir or self.disk_mount)
        if self.load is not None:
            stats.load_1, stats.load_5, stats.load_15 = self.load
        total = self.meminfo_kib.get("MemTotal")
        available = self.meminfo_kib.get("MemAvailable")
        if total is not None:
            stats.ram_total_mib = total // 1024
            if available is not None:
                stats.ram_used_mib = (total - available) // 1024
        if self.disk_total_kib is not None and self.disk_free_kib is not None:
            stats.disk_total_mib = self.disk_total_kib // 1024
            stats.disk_free_mib = self.disk_free_kib // 1024
        if previous is None:
            return stats
        stats.cpu_pct = _cpu_pct(previous.cpu_ticks, self.cpu_ticks)
        elapsed = self.timestamp - previous.timestamp
        if elapsed > 0 and self.net_bytes is not None and previous.net_bytes is not None:
            rx = max(0, self.net_bytes[0] - previous.net_bytes[0])
            tx = max(0, self.net_bytes[1] - previous.net_bytes[1])
            stats.net_rx_bps = round(rx / elapsed, 1)
            stats.net_tx_bps = round(tx / elapsed, 1)
        return stats


def _cpu_pct(before: tuple[int, ...] | None, after: tuple[int, ...] | None) -> float | None:
    """Busy share of the ticks between two ``cpu`` lines of /proc/stat, like psutil and top.

    The fields are user nice system idle iowait irq softirq steal guest guest_nice; guest time is
    already counted in user, so only the first eight add up to the total.
    """
    if before is None or after is None or len(before) < 4 or len(after) < 4:
        return None
    deltas = [max(0, a - b) for a, b in zip(after[:8], before[:8], strict=False)]
    total = sum(deltas)
    if total == 0:
        return None
    idle = deltas[3] + (deltas[4] if len(deltas) > 4 else 0)
    return round(100.0 * (total - idle) / total, 1)


def sample_from_smi(
    timestamp: float,
    gpu_csv: str | None,
    apps_csv: str | None = None,
    proc: ProcSnapshot | None = None,
    previous_proc: ProcSnapshot | None = None,
    gpu_status: str = GPU_STATUS_OK,
    hostname: str | None = None,
    workdir: str | None = None,
) -> HostSample:
    """A ``HostSample`` built from the outputs of the remote commands above."""
    table = gpus_from_smi(gpu_csv, apps_csv) if gpu_csv else SmiGpuTable()
    if gpu_status == GPU_STATUS_OK and not table.gpus:
        gpu_status = "no NVIDIA GPU found"
    return HostSample(
        timestamp=timestamp,
        gpu_status=gpu_status,
        hostname=hostname,
        source="nvidia-smi",
        driver_version=table.driver_version,
        gpus=table.gpus,
        host=proc.host_stats(previous_proc, workdir) if proc else HostStats(disk_path=workdir),
    )
