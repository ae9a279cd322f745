"""The GPU-host sampler: NVML for the GPUs, psutil for the host, one JSON line per sample.

    python -m trainers.gpu --once --json               one sample, then exit
    python -m trainers.gpu --stream --interval 1 --json  a sample every second until killed
    python -m trainers.gpu --workdir /workspace          disk free where the job writes

The line format is ``protocol.gpu_sample.HostSample`` (documented there). A host without an NVIDIA
driver or GPU still gets its host part, with ``gpu_status`` saying why there are no GPUs.

Starts in tens of milliseconds: no torch, and pynvml is imported only when a sample is taken.
The NVML wrapper follows nvitop's ``nvmlQuery``: NVML starts lazily, and every call that fails or
does not exist in the installed driver gives ``None`` instead of an exception.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from trainers.protocol.gpu_sample import (
    GPU_STATUS_OK,
    GpuProcess,
    GpuSample,
    HostSample,
    HostStats,
)
from trainers.protocol.sample_text import format_human

MIB = 1024 * 1024

#: How long ``--once`` watches the CPU and network counters to turn them into rates.
ONCE_WINDOW_S = 0.25
#: After NVML failed to start, how long before trying again (a driver may come back).
NVML_RETRY_S = 30.0

# NVML enum values (stable ABI); kept here so a replayed recording needs no pynvml constants.
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1

#: What a failed nvmlInit means to a person, by pynvml's exception class name.
NVML_INIT_STATUS = {
    "NVMLError_LibraryNotFound": "no NVIDIA driver (libnvidia-ml.so.1 not found)",
    "NVMLError_DriverNotLoaded": "NVIDIA driver not loaded",
    "NVMLError_LibRmVersionMismatch": (
        "NVIDIA driver and library versions differ (reload the driver or reboot)"
    ),
    "NVMLError_NoPermission": "no permission to open the NVIDIA driver",
}
NO_GPU_STATUS = "no NVIDIA GPU found"
NO_PYNVML_STATUS = "pynvml is not installed (pip install nvidia-ml-py)"

#: The calls made per device, with their fixed arguments. The recorder writes one entry per call,
#: and a replayed recording answers them in place of the driver.
DEVICE_CALLS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("nvmlDeviceGetName", ()),
    ("nvmlDeviceGetUUID", ()),
    ("nvmlDeviceGetUtilizationRates", ()),
    ("nvmlDeviceGetMemoryInfo", ()),
    ("nvmlDeviceGetTemperature", (NVML_TEMPERATURE_GPU,)),
    ("nvmlDeviceGetTemperatureV", (NVML_TEMPERATURE_GPU,)),
    ("nvmlDeviceGetPowerUsage", ()),
    ("nvmlDeviceGetEnforcedPowerLimit", ()),
    ("nvmlDeviceGetFanSpeed", ()),
    ("nvmlDeviceGetClockInfo", (NVML_CLOCK_SM,)),
    ("nvmlDeviceGetComputeRunningProcesses", ()),
    ("nvmlDeviceGetComputeRunningProcesses_v2", ()),
    ("nvmlDeviceGetGraphicsRunningProcesses", ()),
    ("nvmlDeviceGetGraphicsRunningProcesses_v2", ()),
)

#: Exceptions that mean "this driver has no such function": try the next variant.
_MISSING_ERRORS = {"NVMLError_FunctionNotFound", "NVMLLibraryMismatchError"}


class _Missing:
    """Marks a call the installed driver does not provide, as distinct from one that failed."""


MISSING = _Missing()


def _import_pynvml() -> ModuleType:
    import pynvml

    return pynvml


class Nvml:
    """A lazy NVML session whose calls return ``None`` instead of raising.

    ``status`` is ``"ok"`` once NVML started and found at least one GPU, otherwise a sentence for
    the person at the keyboard. ``load`` returns the pynvml module; tests pass a replay of a
    recording, and ``clock`` a fake time.
    """

    def __init__(
        self,
        load: Callable[[], ModuleType] = _import_pynvml,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._clock = clock
        self._nvml: ModuleType | None = None
        self._started = False
        self._failed_at: float | None = None
        self._missing: set[str] = set()
        self.status = "NVML not started"

    def start(self) -> bool:
        """Start NVML once; after a failure, try again only every ``NVML_RETRY_S``."""
        if self._started:
            return True
        now = self._clock()
        if self._failed_at is not None and now - self._failed_at < NVML_RETRY_S:
            return False
        try:
            nvml = self._load()
        except ImportError:
            self._failed_at, self.status = now, NO_PYNVML_STATUS
            return False
        try:
            nvml.nvmlInit()
        except Exception as error:
            name = type(error).__name__
            self._failed_at = now
            self.status = NVML_INIT_STATUS.get(name) or f"NVML error: {error}"
            return False
        self._nvml, self._started, self._failed_at = nvml, True, None
        self.status = GPU_STATUS_OK
        return True

    def close(self) -> None:
        if self._started and self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
        self._started, self._nvml = False, None

    def call(self, name: str, *args: Any) -> Any:
        """``name(*args)``, ``None`` when it fails, ``MISSING`` when this driver lacks it."""
        if not self.start() or self._nvml is None:
            return None
        if name in self._missing:
            return MISSING
        function = getattr(self._nvml, name, None)
        if function is None:
            self._missing.add(name)
            return MISSING
        try:
            return function(*args)
        except Exception as error:
            if type(error).__name__ in _MISSING_ERRORS:
                self._missing.add(name)
                return MISSING
            return None

    def query(self, *names: str, args: Sequence[Any] = ()) -> Any:
        """The first of ``names`` that this driver provides, called with ``args``; or None."""
        for name in names:
            value = self.call(name, *args)
            if value is not MISSING:
                return value
        return None

    def driver_version(self) -> str | None:
        return _text(self.query("nvmlSystemGetDriverVersion"))

    def device_count(self) -> int | None:
        count = self.query("nvmlDeviceGetCount")
        return count if isinstance(count, int) else None

    def read_gpus(
        self, describe: Callable[[int], tuple[str | None, str | None]]
    ) -> list[GpuSample]:
        """Every GPU NVML can see; ``describe(pid)`` gives a process's user and command."""
        if not self.start():
            return []
        count = self.device_count()
        if not count:
            self.status = NO_GPU_STATUS if count == 0 else "NVML could not count the GPUs"
            return []
        self.status = GPU_STATUS_OK
        return [self._read_gpu(index, describe) for index in range(count)]

    def _read_gpu(
        self, index: int, describe: Callable[[int], tuple[str | None, str | None]]
    ) -> GpuSample:
        handle = self.query("nvmlDeviceGetHandleByIndex", args=(index,))
        if handle is None:
            return GpuSample(index=index)

        def get(*names: str, args: Sequence[Any] = ()) -> Any:
            return self.query(*names, args=(handle, *args))

        utilization = get("nvmlDeviceGetUtilizationRates")
        memory = get("nvmlDeviceGetMemoryInfo")
        processes = _merge_processes(
            get("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetComputeRunningProcesses_v2"),
            get(
                "nvmlDeviceGetGraphicsRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses_v2"
            ),
            describe,
        )
        return GpuSample(
            index=index,
            name=_text(get("nvmlDeviceGetName")),
            uuid=_text(get("nvmlDeviceGetUUID")),
            utilization_pct=_int(_field(utilization, "gpu")),
            memory_used_mib=_mib(_field(memory, "used")),
            memory_total_mib=_mib(_field(memory, "total")),
            temperature_c=_int(
                get(
                    "nvmlDeviceGetTemperature",
                    "nvmlDeviceGetTemperatureV",
                    args=(NVML_TEMPERATURE_GPU,),
                )
            ),
            power_draw_w=_watts(get("nvmlDeviceGetPowerUsage")),
            power_limit_w=_watts(get("nvmlDeviceGetEnforcedPowerLimit")),
            fan_pct=_int(get("nvmlDeviceGetFanSpeed")),
            sm_clock_mhz=_int(get("nvmlDeviceGetClockInfo", args=(NVML_CLOCK_SM,))),
            processes=processes,
        )


def _field(value: Any, name: str) -> Any:
    return getattr(value, name, None) if value is not None else None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _mib(value: Any) -> int | None:
    number = _int(value)
    return None if number is None else number // MIB


def _watts(milliwatts: Any) -> float | None:
    number = _int(milliwatts)
    return None if number is None else number / 1000.0


def _merge_processes(
    compute: Any, graphics: Any, describe: Callable[[int], tuple[str | None, str | None]]
) -> list[GpuProcess]:
    """One entry per pid: a process may be listed as both a compute and a graphics client."""
    by_pid: dict[int, GpuProcess] = {}
    for info in [*(compute or []), *(graphics or [])]:
        pid = _int(getattr(info, "pid", None))
        if pid is None:
            continue
        memory = _mib(getattr(info, "usedGpuMemory", None))
        known = by_pid.get(pid)
        if known is not None:
            if known.gpu_memory_mib is None:
                known.gpu_memory_mib = memory
            continue
        user, command = describe(pid)
        by_pid[pid] = GpuProcess(pid=pid, user=user, gpu_memory_mib=memory, command=command)
    return sorted(by_pid.values(), key=lambda p: p.pid)


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


class Sampler:
    """Takes ``HostSample``s: the GPUs through ``Nvml``, the host through ``HostReader``."""

    def __init__(self, workdir: Path, nvml: Nvml | None = None) -> None:
        self.nvml = nvml or Nvml()
        self.host = HostReader(workdir)
        self.hostname = socket.gethostname()

    def prime(self) -> None:
        self.host.prime()

    def sample(self) -> HostSample:
        timestamp = round(time.time(), 3)
        gpus = self.nvml.read_gpus(describe_process)
        return HostSample(
            timestamp=timestamp,
            gpu_status=self.nvml.status,
            hostname=self.hostname,
            source="nvml",
            driver_version=self.nvml.driver_version() if gpus else None,
            gpus=gpus,
            host=self.host.read(),
        )


# Recording ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """An NVML return value as JSON: ctypes structs and pynvml's friendly objects as objects."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    fields = getattr(value, "_fields_", None)
    if fields is not None:
        return {name: _plain(getattr(value, name)) for name, *_ in fields}
    if hasattr(value, "__dict__"):
        return {k: _plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return repr(value)


def record_nvml(path: Path, load: Callable[[], ModuleType] = _import_pynvml) -> None:
    """Write what this host's driver answers to every call the sampler makes, so that a test
    can replay a real machine. Errors are kept by class name, as the replay raises them."""
    nvml = load()

    def answer(function: Callable[..., Any], *args: Any) -> Any:
        try:
            return _plain(function(*args))
        except Exception as error:
            return {"nvml_error": type(error).__name__}

    nvml.nvmlInit()
    try:
        system = {
            name: answer(getattr(nvml, name))
            for name in ("nvmlSystemGetDriverVersion", "nvmlDeviceGetCount")
            if hasattr(nvml, name)
        }
        devices = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            device = {}
            for name, args in DEVICE_CALLS:
                function = getattr(nvml, name, None)
                device[name] = (
                    {"nvml_error": "NVMLError_FunctionNotFound"}
                    if function is None
                    else answer(function, handle, *args)
                )
            devices.append(device)
    finally:
        nvml.nvmlShutdown()
    recording = {
        "recording": "nvml",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": socket.gethostname(),
        "pynvml": getattr(nvml, "__version__", None),
        "system": system,
        "devices": devices,
    }
    path.write_text(json.dumps(recording, indent=2) + "\n")


# CLI ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainers.gpu",
        description="Sample this host's GPUs (NVML) and CPU, memory, disk and network (psutil).",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one sample, then exit (default)")
    mode.add_argument("--stream", action="store_true", help="a sample every --interval seconds")
    mode.add_argument(
        "--record-nvml", metavar="FILE", type=Path, help="record this driver's NVML answers"
    )
    parser.add_argument("--json", action="store_true", help="JSON lines (HostSample schema)")
    parser.add_argument("--interval", type=float, default=1.0, metavar="S", help="default 1")
    parser.add_argument("--count", type=int, metavar="N", help="with --stream: stop after N")
    parser.add_argument(
        "--workdir", type=Path, default=Path.home(), metavar="DIR", help="where to measure disk"
    )
    return parser


def _emit(sample: HostSample, as_json: bool) -> None:
    print(sample.to_json() if as_json else format_human(sample) + "\n", flush=True)


def _stream(sampler: Sampler, interval: float, count: int | None, as_json: bool) -> None:
    """Samples on a fixed schedule (no drift); a late sample moves the schedule, never bunches."""
    sampler.prime()
    due = time.monotonic() + min(interval, ONCE_WINDOW_S)
    taken = 0
    while count is None or taken < count:
        time.sleep(max(0.0, due - time.monotonic()))
        _emit(sampler.sample(), as_json)
        taken += 1
        due += interval
        now = time.monotonic()
        if due < now:
            due = now + interval


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.interval <= 0:
        print("trainers.gpu: --interval must be more than 0 seconds", file=sys.stderr)
        return 2
    if args.count is not None and args.count < 1:
        print("trainers.gpu: --count must be at least 1", file=sys.stderr)
        return 2
    if args.record_nvml is not None:
        try:
            record_nvml(args.record_nvml)
        except Exception as error:
            print(f"trainers.gpu: cannot record NVML: {error}", file=sys.stderr)
            return 1
        print(f"recorded NVML answers to {args.record_nvml}")
        return 0
    sampler = Sampler(args.workdir.expanduser())
    try:
        if args.stream:
            _stream(sampler, args.interval, args.count, args.json)
        else:
            sampler.prime()
            time.sleep(ONCE_WINDOW_S)
            _emit(sampler.sample(), args.json)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (the laptop closed the channel): leave quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        sampler.nvml.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
