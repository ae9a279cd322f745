"""The on-host layout of a gputui job folder, shared by the wrapper, the laptop and the watchdog.

A job lives in ``~/.gputui/jobs/<id>/`` on the host that runs it, so that the truth about a job
stays where the job runs and any laptop can reconnect to it. The wrapper writes these files:

- ``meta.json``   what was launched (written by the laptop before the job starts)
- ``log``         the job's combined stdout/stderr, unbuffered
- ``pid``         one line ``PID PGID BOOT_ID START_TICKS`` once the command is started;
                  the boot id and the process start time (field 22 of ``/proc/PID/stat``) tell a
                  live job from a reused PID or a rebooted host
- ``exit_code``   the command's exit status, written when it ends
- ``ended_at``    Unix time the command ended
- ``stop``        written by ``gputui stop``: ``TERM`` or ``KILL`` and the time, so the state
                  can say "stopped" rather than "failed" (one such line per signal sent:
                  ``TERM`` then, when the grace period ran out, ``KILL``)

and these, which only the job machinery reads:

- ``command``     the command exactly as the person wrote it, run by ``bash`` (else ``sh``)
- ``env``         the host's environment activation, sourced before the command (may be absent)
- ``workdir``     the absolute folder the command starts in
- ``wrapper.sh``  the wrapper script itself (so a person on the host can read what ran)
- ``wrapper``     one line ``PID BOOT_ID START_TICKS`` of the wrapper, which outlives the command
                  by the moment it takes to write the exit code
- ``started_at``  Unix time the command was started

and, when the command is gputui's trainer (it finds the folder through ``GPUTUI_JOB_DIR``):

- ``metrics.jsonl`` a symlink to the run's progress lines (``protocol.progress``), so the laptop
                  can follow a job's metrics without reading its config
- ``output``      a symlink to the run's output folder (checkpoints, adapter): what a pull of
                  the job's results fetches

This module is stdlib-only: the laptop side imports it without torch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

JOBS_DIR = ".gputui/jobs"
META = "meta.json"
LOG = "log"
PID = "pid"
EXIT_CODE = "exit_code"
ENDED_AT = "ended_at"
STOP = "stop"
COMMAND = "command"
ENV = "env"
WORKDIR = "workdir"
WRAPPER_SCRIPT = "wrapper.sh"
WRAPPER = "wrapper"
STARTED_AT = "started_at"
METRICS_LINK = "metrics.jsonl"
OUTPUT_LINK = "output"
#: Set by the wrapper for the command it runs: the absolute path of the job folder.
JOB_DIR_ENV = "GPUTUI_JOB_DIR"

#: How long a job with metadata but no pid file still counts as starting.
STARTING_GRACE_S = 120.0


@dataclass(frozen=True)
class PidRecord:
    """What the wrapper recorded about the process it started."""

    pid: int
    pgid: int
    boot_id: str
    start_ticks: int

    @classmethod
    def parse(cls, text: str) -> PidRecord | None:
        parts = text.split()
        if len(parts) != 4:
            return None
        try:
            return cls(int(parts[0]), int(parts[1]), parts[2], int(parts[3]))
        except ValueError:
            return None


def jobs_root(home: Path | None = None) -> Path:
    """``~/.gputui/jobs`` on this machine."""
    return (home or Path.home()) / JOBS_DIR


def boot_id() -> str:
    """This boot's id; it changes when the host reboots."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None when there is no live process.

    A zombie (state ``Z``) has finished its work and only waits to be reaped: it counts as gone.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[:1] == ["Z"]:
        return None
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def record_is_alive(record: PidRecord) -> bool:
    """True when the recorded process still runs: same boot, same PID, same start time."""
    if record.boot_id != boot_id():
        return False
    return process_start_ticks(record.pid) == record.start_ticks


def job_is_running(job: Path) -> bool:
    """A job runs while it has no exit code and its recorded process is alive."""
    if (job / EXIT_CODE).exists():
        return False
    try:
        record = PidRecord.parse((job / PID).read_text())
    except OSError:
        # Launched but not started yet: count it as running for a while so that nothing stops
        # the host under a job that is starting, but not forever for one that never started.
        try:
            return time.time() - (job / META).stat().st_mtime < STARTING_GRACE_S
        except OSError:
            return False
    return record is not None and record_is_alive(record)


def running_jobs(root: Path | None = None) -> list[str]:
    """Ids of the jobs under ``root`` that are running now."""
    root = root or jobs_root()
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return []
    return [e.name for e in entries if e.is_dir() and job_is_running(Path(e.path))]
