"""What a job is doing, derived from the files its wrapper leaves on the host.

The host prints raw facts (``scripts/probe_jobs.sh``); everything that decides a state happens
here, in plain Python, so that the rules are tested without a host: a job whose recorded process
still runs with the same boot id and start time is running; a reused PID or a new boot id means
the process is gone, and without an exit code that makes the job lost.
"""

from __future__ import annotations

import json
import math
import re
import signal
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from trainers.protocol.jobdir import STARTING_GRACE_S, PidRecord

FORMAT_VERSION = 1

#: What ``transfer.jobs.launch.new_job_id`` makes: a job folder on the host with any other name
#: was not made by gputui and is ignored (it never reaches a terminal or a host command line).
JOB_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def is_job_id(text: str) -> bool:
    """Whether gputui made this name (only such names reach a screen or a host command)."""
    return JOB_ID_PATTERN.fullmatch(text) is not None


def _without_surrogates(text: str) -> str:
    """``text`` that can be written out: JSON may carry lone surrogates (``"\\udc80"``)."""
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


class JobState(str, Enum):
    STARTING = "starting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    LOST = "lost"

    @property
    def is_active(self) -> bool:
        """True while the job may still produce output."""
        return self in (JobState.STARTING, JobState.RUNNING)


@dataclass(frozen=True)
class JobMeta:
    """What was launched; stored as one JSON line in ``meta.json`` on the host."""

    id: str
    name: str
    command: str
    workdir: str
    host: str
    created_at: float
    env_activation: str | None = None
    address: str = ""
    git_commit: str | None = None
    runner: str = "tmux"
    tmux_session: str | None = None
    tmux_socket: str | None = None
    rate_usd_per_hour: float = 0.0

    def to_json_line(self) -> str:
        data = {"format": FORMAT_VERSION, **self.__dict__}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, job_id: str, data: dict[str, Any]) -> JobMeta:
        def text(key: str, default: str = "") -> str:
            value = data.get(key, default)
            return _without_surrogates(value) if isinstance(value, str) else default

        def optional(key: str) -> str | None:
            value = data.get(key)
            return _without_surrogates(value) if isinstance(value, str) else None

        def number(key: str) -> float:
            value = data.get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return 0.0
            try:
                number = float(value)
            except OverflowError:  # an int too large for a float
                return 0.0
            return number if math.isfinite(number) else 0.0

        return cls(
            id=job_id,
            name=text("name", job_id),
            command=text("command"),
            workdir=text("workdir"),
            host=text("host"),
            created_at=number("created_at"),
            env_activation=optional("env_activation"),
            address=text("address"),
            git_commit=optional("git_commit"),
            runner=text("runner", "tmux"),
            tmux_session=optional("tmux_session"),
            tmux_socket=optional("tmux_socket"),
            rate_usd_per_hour=number("rate_usd_per_hour"),
        )


@dataclass(frozen=True)
class StopSignal:
    """One signal that ``gputui stop`` sent, as recorded in the job's ``stop`` file."""

    name: str
    at: float


@dataclass(frozen=True)
class JobFacts:
    """The raw files and process lookups of one job, as the host reported them."""

    job_id: str
    meta: str
    pid: str | None = None
    pid_proc: int | None = None
    wrapper: str | None = None
    wrapper_proc: int | None = None
    exit_code: str | None = None
    ended_at: str | None = None
    started_at: str | None = None
    stop: str | None = None
    meta_mtime: float | None = None


@dataclass(frozen=True)
class HostFacts:
    """One probe of a host: its boot id and clock, and the facts about each job."""

    boot_id: str
    now: float
    jobs: list[JobFacts] = field(default_factory=list)


@dataclass(frozen=True)
class JobStatus:
    """A job as the person sees it: what was launched, its state and its times (host clock)."""

    meta: JobMeta
    state: JobState
    detail: str = ""
    exit_code: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    observed_at: float = 0.0
    stop_signals: tuple[StopSignal, ...] = ()

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def runtime_s(self) -> float | None:
        """Seconds the command ran (so far, when it still runs); unknown for a lost job."""
        if self.started_at is None or (self.state is JobState.LOST and self.ended_at is None):
            return None
        end = self.ended_at if self.ended_at is not None else self.observed_at
        return max(0.0, end - self.started_at)

    @property
    def state_text(self) -> str:
        """The state with its detail, e.g. ``stopped (SIGKILL after 60 s)``."""
        return f"{self.state.value} ({self.detail})" if self.detail else self.state.value

    def to_json(self, cost_usd: float | None = None) -> dict[str, Any]:
        """The job for ``--json``; its cost comes from the one cost rule
        (``transfer.telemetry.cost``), which the caller applies."""
        return {
            "id": self.meta.id,
            "name": self.meta.name,
            "host": self.meta.host,
            "state": self.state.value,
            "detail": self.detail,
            "exit_code": self.exit_code,
            "command": self.meta.command,
            "workdir": self.meta.workdir,
            "git_commit": self.meta.git_commit,
            "runner": self.meta.runner,
            "tmux_session": self.meta.tmux_session,
            "created_at": self.meta.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "runtime_s": self.runtime_s,
            "cost_usd": cost_usd,
            "stop_signals": [s.name for s in self.stop_signals],
        }


def parse_probe(text: str) -> HostFacts:
    """Read the ``key value`` lines that ``probe_jobs.sh`` prints.

    A job folder whose name is not a job id (the host made it, not gputui) is left out, with
    every line about it.
    """
    boot_id = "unknown"
    now = 0.0
    jobs: list[JobFacts] = []
    current: dict[str, Any] | None = None
    skipping = False

    def close() -> None:
        if current is not None and "meta" in current:
            jobs.append(JobFacts(**current))

    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "@job":
            close()
            skipping = not is_job_id(value)
            current = None if skipping else {"job_id": value}
        elif skipping:
            continue
        elif current is None:
            if key == "boot":
                boot_id = value.strip()
            elif key == "now":
                now = _float(value) or 0.0
        elif key == "meta":
            current["meta"] = value
        elif key in ("pid", "wrapper", "exit_code", "ended_at", "started_at", "stop"):
            current[key] = value.strip()
        elif key in ("pid_proc", "wrapper_proc"):
            ticks = _int(value)
            if ticks is not None:
                current[key] = ticks
        elif key == "meta_mtime":
            current["meta_mtime"] = _float(value)
    close()
    return HostFacts(boot_id=boot_id, now=now, jobs=jobs)


def derive_status(facts: JobFacts, boot_id: str, now: float) -> JobStatus | None:
    """The state of one job; None when its metadata cannot be read."""
    try:
        data = json.loads(facts.meta)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    meta = JobMeta.from_json(facts.job_id, data)
    signals = _parse_stop(facts.stop)
    exit_code = _int(facts.exit_code or "")
    started = _float(facts.started_at or "")
    ended = _float(facts.ended_at or "")

    def status(state: JobState, detail: str = "", exit_code: int | None = None) -> JobStatus:
        return JobStatus(
            meta=meta,
            state=state,
            detail=detail,
            exit_code=exit_code,
            started_at=started,
            ended_at=(ended if ended is not None else now) if exit_code is not None else None,
            observed_at=now,
            stop_signals=signals,
        )

    if exit_code is not None:
        return status(
            _ended_state(exit_code, signals), _ended_detail(exit_code, signals), exit_code
        )

    record = PidRecord.parse(facts.pid) if facts.pid else None
    wrapper_alive = _wrapper_alive(facts, boot_id)
    if record is not None:
        if record.boot_id != boot_id:
            return status(JobState.LOST, "the host rebooted")
        if facts.pid_proc == record.start_ticks:
            return status(JobState.RUNNING, _stopping_detail(signals, now))
        if facts.pid_proc is not None:
            return status(
                JobState.LOST, "its process is gone and the PID now belongs to another process"
            )
        if wrapper_alive:
            # The command has just ended; the wrapper is writing its exit code.
            return status(JobState.RUNNING, "ending")
        return status(JobState.LOST, "its process vanished without an exit code")

    if facts.wrapper is not None:
        if wrapper_alive:
            return status(JobState.STARTING)
        wrapper_boot = facts.wrapper.split()[1:2]
        if wrapper_boot and wrapper_boot[0] != boot_id:
            return status(JobState.LOST, "the host rebooted")
        return status(JobState.LOST, "the wrapper died before starting the command")
    created = facts.meta_mtime if facts.meta_mtime is not None else meta.created_at
    if now - created < STARTING_GRACE_S:
        return status(JobState.STARTING)
    return status(JobState.LOST, "it never started")


def derive_all(host: HostFacts) -> list[JobStatus]:
    """Every readable job, oldest first."""
    statuses = [derive_status(f, host.boot_id, host.now) for f in host.jobs]
    found = [s for s in statuses if s is not None]
    return sorted(found, key=lambda s: (s.meta.created_at, s.meta.id))


def signal_name(exit_code: int) -> str | None:
    """``SIGTERM`` for 143 and the like: a shell reports death by signal N as 128 + N."""
    if 128 < exit_code < 128 + 65:
        try:
            return signal.Signals(exit_code - 128).name
        except ValueError:
            return None
    return None


def _ended_state(exit_code: int, signals: tuple[StopSignal, ...]) -> JobState:
    if signals:
        return JobState.STOPPED
    return JobState.SUCCEEDED if exit_code == 0 else JobState.FAILED


def _ended_detail(exit_code: int, signals: tuple[StopSignal, ...]) -> str:
    killed_by = signal_name(exit_code)
    code = f"exit {exit_code}" + (f", {killed_by}" if killed_by else "")
    names = [s.name for s in signals]
    if "KILL" in names:
        kill = next(s for s in signals if s.name == "KILL")
        if "TERM" in names:
            term = next(s for s in signals if s.name == "TERM")
            return f"SIGKILL after {kill.at - term.at:.0f} s grace; {code}"
        return f"SIGKILL; {code}"
    if "TERM" in names:
        return f"SIGTERM; {code}"
    return code


def _stopping_detail(signals: tuple[StopSignal, ...], now: float) -> str:
    if not signals:
        return ""
    last = signals[-1]
    return f"stopping: SIG{last.name} sent {max(0.0, now - last.at):.0f} s ago"


def _wrapper_alive(facts: JobFacts, boot_id: str) -> bool:
    if facts.wrapper is None:
        return False
    parts = facts.wrapper.split()
    if len(parts) != 3 or parts[1] != boot_id:
        return False
    return facts.wrapper_proc is not None and _int(parts[2]) == facts.wrapper_proc


def _parse_stop(text: str | None) -> tuple[StopSignal, ...]:
    if not text:
        return ()
    words = text.split()
    signals: list[StopSignal] = []
    for name, at in zip(words[::2], words[1::2], strict=False):
        when = _float(at)
        if name in ("TERM", "KILL") and when is not None:
            signals.append(StopSignal(name, when))
    return tuple(signals)


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _float(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None
