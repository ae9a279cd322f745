"""A lazy NVML session whose calls give ``None`` instead of raising: the GPU half of a sample.

It follows nvitop's ``nvmlQuery``: NVML starts lazily (pynvml is imported only then), and every
call that fails or does not exist in the installed driver gives ``None`` instead of an exception,
so one missing function costs one field, never the sample. Tests replay a recording of a real
driver (``nvml_record.py``) in place of pynvml.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from trainers.protocol.gpu_sample import GPU_STATUS_OK, GpuProcess, GpuSample

MIB = 1024 * 1024

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


def import_pynvml() -> ModuleType:
    """The real driver bindings, imported at the first sample (tests replace them)."""
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
        load: Callable[[], ModuleType] = import_pynvml,
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
