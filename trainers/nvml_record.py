"""Recording a driver: what this host's NVML answers to every call the sampler makes.

``python -m trainers.gpu --record-nvml FILE`` writes it; a test replays the file in place of
pynvml, so the sampler is checked against real machines without their GPUs.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from trainers.nvml import DEVICE_CALLS, import_pynvml


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


def record_nvml(path: Path, load: Callable[[], ModuleType] = import_pynvml) -> None:
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
