"""Where a host's telemetry comes from, and the shell commands that read it.

Three sources, best first:

- ``sampler``: ``python -m trainers.gpu`` is importable on the host (by an interpreter the link
  knows, in the profile's environment, from the work folder, or in a ``~/.gputui/venv``): it
  streams complete samples itself.
- ``nvidia-smi``: a bare rented host. ``nvidia-smi --query-gpu=… --loop-ms=…`` streams the GPU
  table, and one command per tick reads ``/proc`` and the GPU processes.
- ``proc``: no usable nvidia-smi either; the host part alone, with ``gpu_status`` saying why.

Every command runs after the profile's ``env_activation`` (``conda activate x``,
``export PATH=…``), in bash when the host has it, with the activation's own output sent to stderr
so that it cannot corrupt the data lines. One detection round trip picks the source; the answer is
cached per host until the chosen source fails.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

from trainers.protocol.gpu_sample import GPU_STATUS_OK
from trainers.protocol.smi import (
    APPS_QUERY_FIELDS,
    CSV_FORMAT,
    ProcSnapshot,
    proc_command,
    smi_status,
)
from transfer.hosts import HostProfile
from transfer.link import Link
from transfer.scripts import load

Mode = Literal["sampler", "nvidia-smi", "proc"]

#: Where a person (or a future ``gputui`` installer) keeps gputui on a host, besides ``python3``.
HOST_VENV_PYTHON = "$HOME/.gputui/venv/bin/python"
#: How long ``once`` watches the CPU and network counters to turn them into rates.
ONCE_WINDOW_S = 0.25
DETECT_TIMEOUT_S = 30.0

APPS_MARK = "@@gputui-apps"
GPU_MARK = "@@gputui-gpus"
STATUS_MARK = "@@gputui-status"
PROC_MARK = "@@gputui-proc"
TICK_END = "@@gputui-tick"


def shell_path(path: str) -> str:
    """``path`` for the host's shell; a leading ``~`` still expands there."""
    if path == "~" or path.startswith("~/"):
        rest = path[2:]
        return '"$HOME"' + ("/" + shlex.quote(rest) if rest else "")
    return shlex.quote(path)


def in_env(command: str, activation: str | None, *, report: bool = False) -> str:
    """``command`` after the environment activation; ``report`` prints its exit status first."""
    if not activation or not activation.strip():
        return "echo '@activation 0'\n" + command if report else command
    script = "{ " + activation + "\n} >&2\n"
    if report:
        script += 'echo "@activation $?"\n'
    script += command
    quoted = shlex.quote(script)
    return (
        f"if command -v bash >/dev/null 2>&1; then exec bash -c {quoted}; "
        f"else exec sh -c {quoted}; fi"
    )


def _enter_workdir(workdir: str) -> str:
    return f'cd {shell_path(workdir)} 2>/dev/null || cd "$HOME"\n'


DETECT_SCRIPT = load("detect.sh")


@dataclass(frozen=True)
class Detection:
    """What one detection round trip found on a host."""

    mode: Mode
    hostname: str | None = None
    python: str | None = None
    gpu_count: int | None = None
    gpu_status: str = GPU_STATUS_OK
    activation_failed: bool = False

    @classmethod
    def parse(cls, text: str) -> Detection:
        fields: dict[str, str] = {}
        smi_lines: list[str] = []
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "@smi-out":
                smi_lines.append(value)
            elif key.startswith("@"):
                fields.setdefault(key[1:], value.strip())
        smi_code = _int(fields.get("smi"), 127)
        smi_output = "\n".join(smi_lines)
        status = smi_status(smi_code, smi_output)
        gpu_count = sum(1 for line in smi_lines if line.startswith("GPU "))
        if status == GPU_STATUS_OK and gpu_count == 0:
            status = "no NVIDIA GPU found"
        python = fields.get("sampler") or None
        smi_ok = status == GPU_STATUS_OK
        # The sampler reads NVML itself; without pynvml it would see no GPU that nvidia-smi sees.
        if python and (fields.get("pynvml") == "yes" or not smi_ok):
            mode: Mode = "sampler"
        elif smi_ok:
            mode = "nvidia-smi"
        else:
            mode = "proc"
        return cls(
            mode=mode,
            hostname=fields.get("hostname") or None,
            python=python,
            gpu_count=gpu_count or None,
            gpu_status=status,
            activation_failed=_int(fields.get("activation"), 0) != 0,
        )


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


_CACHE: dict[tuple[str, ...], Detection] = {}


def _cache_key(host: HostProfile) -> tuple[str, ...]:
    return (
        host.name,
        host.hostname,
        str(host.port),
        host.user or "",
        host.workdir,
        host.env_activation or "",
    )


def forget(host: HostProfile) -> None:
    """Detect again next time (the chosen source failed, or the host was set up since)."""
    _CACHE.pop(_cache_key(host), None)


async def detect(link: Link, host: HostProfile, *, refresh: bool = False) -> Detection:
    """The best source on ``host``, from one round trip; cached per profile."""
    key = _cache_key(host)
    if not refresh and key in _CACHE:
        return _CACHE[key]
    # The link may know interpreters with gputui (the local one: the running interpreter).
    pythons = " ".join(shlex.quote(python) for python in link.sampler_pythons)
    candidates = f'set -- {pythons} python3 "{HOST_VENV_PYTHON}"\n'
    script = _enter_workdir(host.workdir) + candidates + DETECT_SCRIPT
    result = await link.run(
        in_env(script, host.env_activation, report=True), timeout=DETECT_TIMEOUT_S
    )
    detection = Detection.parse(result.stdout)
    _CACHE[key] = detection
    return detection


# The commands of each source --------------------------------------------------------------


def sampler_command(host: HostProfile, python: str, interval: float | None) -> str:
    """``python -m trainers.gpu --json``: a stream every ``interval`` s, or once when None."""
    mode = "--once" if interval is None else f"--stream --interval {interval:g}"
    command = (
        _enter_workdir(host.workdir)
        + f"exec {shlex.quote(python)} -m trainers.gpu {mode} --json"
        + f" --workdir {shell_path(host.workdir)}"
    )
    return in_env(command, host.env_activation)


def smi_stream_command(host: HostProfile, interval: float) -> str:
    """The endless GPU table of ``nvidia-smi --loop-ms``."""
    from trainers.protocol.smi import smi_gpu_command

    argv = smi_gpu_command(loop_ms=max(1, round(interval * 1000)))
    return in_env("exec " + shlex.join(argv), host.env_activation)


def _apps_command() -> str:
    return shlex.join(
        ["nvidia-smi", f"--query-compute-apps={APPS_QUERY_FIELDS}", f"--format={CSV_FORMAT}"]
    )


def tick_command(host: HostProfile, with_apps: bool, interval: float) -> str:
    """A loop on the host that reads ``/proc`` (and, with GPUs, their processes) every
    ``interval`` seconds, each reading closed by ``TICK_END``: one long-lived session rather
    than a new one per tick (a login runs the person's shell start-up files every time)."""
    body = proc_command(host.workdir)
    if with_apps:
        body += f"; echo {APPS_MARK}; {_apps_command()}"
    script = f"while :; do {body}; echo {TICK_END}; sleep {interval:g}; done"
    return in_env(script, host.env_activation)


def split_tick(text: str) -> tuple[str, str | None]:
    """The ``/proc`` part and the processes part (None when not asked for) of a tick."""
    proc, mark, apps = text.partition(APPS_MARK + "\n")
    if not mark:
        proc, mark, apps = text.partition(APPS_MARK)
    return proc, (apps if mark else None)


def once_command(host: HostProfile, with_gpus: bool) -> str:
    """One round trip for one complete sample: two ``/proc`` snapshots ``ONCE_WINDOW_S`` apart
    (CPU % and network rates need two), then the GPU table and its processes."""
    proc = proc_command(host.workdir)
    parts = [proc, f"echo {PROC_MARK}", f"sleep {ONCE_WINDOW_S:g}", proc]
    if with_gpus:
        from trainers.protocol.smi import smi_gpu_command

        parts += [
            f"echo {GPU_MARK}",
            shlex.join(smi_gpu_command()) + " 2>&1",
            f'echo "{STATUS_MARK} $?"',
            f"echo {APPS_MARK}",
            _apps_command(),
        ]
    return in_env("\n".join(parts), host.env_activation)


@dataclass(frozen=True)
class OnceOutput:
    """The parts of a ``once_command`` output."""

    first_proc: str
    second_proc: str
    gpu_csv: str | None
    gpu_exit: int | None
    apps_csv: str | None

    @classmethod
    def parse(cls, text: str) -> OnceOutput:
        first, _, rest = text.partition(PROC_MARK + "\n")
        second, mark, rest = rest.partition(GPU_MARK + "\n")
        if not mark:
            return cls(first, second, None, None, None)
        gpu_csv, _, rest = rest.partition(STATUS_MARK + " ")
        code_line, _, rest = rest.partition("\n")
        _, _, apps = rest.partition(APPS_MARK + "\n")
        return cls(first, second, gpu_csv, _int(code_line.strip(), 1), apps)

    def snapshots(self, taken_at: float) -> tuple[ProcSnapshot, ProcSnapshot]:
        """Both snapshots; the second stamped ``taken_at``, the first ``ONCE_WINDOW_S`` before."""
        return (
            ProcSnapshot.parse(self.first_proc, taken_at - ONCE_WINDOW_S),
            ProcSnapshot.parse(self.second_proc, taken_at),
        )
