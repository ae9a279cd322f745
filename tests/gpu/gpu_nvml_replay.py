"""A pynvml stand-in that answers from a recording of a real driver's answers.

The recordings (tests/fixtures/recorded/recorded_nvml_*.json) hold, per device, what each NVML
call returned: NVML's own units and types, and errors by pynvml class name. The replay raises
those errors as classes of the same name, which is all the wrapper looks at.
"""

from __future__ import annotations

import copy
import json
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDED = FIXTURES / "recorded"
FAKE_BIN = FIXTURES / "bin"


def load_recording(name: str) -> dict[str, Any]:
    return json.loads((RECORDED / name).read_text())


def _namespace(value: Any) -> Any:
    """Structs come back from pynvml as objects with attributes, not dicts."""
    if isinstance(value, dict):
        return types.SimpleNamespace(**{k: _namespace(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_namespace(v) for v in value]
    return value


class Handle:
    def __init__(self, index: int) -> None:
        self.index = index


class ReplayedNvml(types.ModuleType):
    """Answers NVML calls from a recording; counts what was called."""

    def __init__(self, recording: dict[str, Any], init_error: str | None = None) -> None:
        super().__init__("pynvml")
        self.recording = recording
        self.init_error = init_error
        self.calls: list[str] = []
        self.inits = 0
        self.shutdowns = 0
        self._errors: dict[str, type[Exception]] = {}
        self.NVMLError = self._error_class("NVMLError")

    def _error_class(self, name: str) -> type[Exception]:
        if name not in self._errors:
            base = self._errors.get("NVMLError", Exception)
            self._errors[name] = type(name, (base,), {})
        return self._errors[name]

    def _answer(self, answer: Any) -> Any:
        if isinstance(answer, dict) and "nvml_error" in answer:
            raise self._error_class(answer["nvml_error"])()
        return _namespace(copy.deepcopy(answer))

    def nvmlInit(self) -> None:
        self.inits += 1
        self.calls.append("nvmlInit")
        if self.init_error:
            raise self._error_class(self.init_error)()

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> Any:
        self.calls.append("nvmlSystemGetDriverVersion")
        return self._answer(self.recording["system"]["nvmlSystemGetDriverVersion"])

    def nvmlDeviceGetCount(self) -> Any:
        self.calls.append("nvmlDeviceGetCount")
        return self._answer(self.recording["system"]["nvmlDeviceGetCount"])

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Handle:
        self.calls.append("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.recording["devices"]):
            raise self._error_class("NVMLError_InvalidArgument")()
        return Handle(index)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if not name.startswith("nvmlDevice"):
            raise AttributeError(name)
        if not any(name in device for device in self.recording["devices"]):
            raise AttributeError(name)

        def call(handle: Handle, *args: Any) -> Any:
            self.calls.append(name)
            device = self.recording["devices"][handle.index]
            if name not in device:
                raise self._error_class("NVMLError_FunctionNotFound")()
            return self._answer(device[name])

        return call
