"""The idle watchdog: stop paying for a host that sits idle, from the host itself.

    python -m trainers.idle --stop-command 'runpodctl stop pod $RUNPOD_POD_ID'
    python -m trainers.idle --dry-run --window 15m --threshold 5

It runs on the GPU host (launched as a gputui job, so it keeps watching while the laptop sleeps)
and applies one rule: the host is idle while **no gputui job runs on it** and **every GPU's
utilization stays under the threshold** (default 5 %); once it has been idle for the whole window
(default 15 min) the stop command runs through the shell. It never stops a host while a job runs.

How the rule reads the GPUs:
- A host with no NVIDIA driver or no GPU counts as 0 % (there is nothing to keep busy).
- A GPU whose utilization cannot be read counts as busy: stopping is the costly mistake.
- A GPU that was seen before and is gone (driver failure, GPU lost) is such an unreadable GPU.
- Idle time is measured from the first idle sample; any busy sample starts the wait over.
- The watchdog's own job does not count as a running job.

Each decision is one JSON line on stdout: time, gpu_utils, running_jobs, idle_for (seconds),
decision (keep, stop, or would-stop with ``--dry-run``) and the reason. The stop decision is
logged before the command runs (a shutdown may not let it log afterwards); the command's exit
status follows in an ``"event": "stop-command"`` line. If the command fails, the watchdog keeps
watching and tries again at the next idle sample.

``--replay FILE`` feeds samples (``trainers.gpu --json`` lines, each with its own timestamp)
instead of reading the GPUs, without waiting between them: a scripted utilization series shows
exactly when the rule stops.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from trainers.protocol import jobdir
from trainers.protocol.gpu_sample import HostSample, SampleFormatError
from trainers.protocol.idle_rule import (
    DEFAULT_THRESHOLD_PCT,
    DEFAULT_WINDOW_S,
    STOP,
    Decision,
    IdleRule,
    IdleTracker,
)

DEFAULT_INTERVAL_S = 30.0
STOP_COMMAND_TIMEOUT_S = 600.0


# The host around the rule -------------------------------------------------------------------


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat[stat.rfind(")") + 2 :].split()[1])
    except (IndexError, ValueError):
        return None


def _ancestors(pid: int) -> set[int]:
    """``pid`` and every process above it."""
    seen: set[int] = set()
    current: int | None = pid
    while current and current not in seen:
        seen.add(current)
        current = _parent_pid(current)
    return seen


def other_running_jobs(root: Path) -> list[str]:
    """Running gputui jobs, leaving out the one this watchdog runs in: the job named by
    ``GPUTUI_JOB_ID`` (set by the job wrapper), or whose recorded process is this process or
    one of its ancestors."""
    mine = _ancestors(os.getpid())
    own_id = os.environ.get("GPUTUI_JOB_ID")
    jobs = []
    for job in jobdir.running_jobs(root):
        if job == own_id:
            continue
        try:
            record = jobdir.PidRecord.parse((root / job / jobdir.PID).read_text())
        except OSError:
            record = None
        if record is not None and record.pid in mine:
            continue
        jobs.append(job)
    return jobs


def run_stop_command(command: str) -> tuple[int, str]:
    """Run ``command`` through the shell; its exit status and the tail of its output."""
    try:
        done = subprocess.run(
            command,
            shell=True,
            capture_output=True,
            text=True,
            timeout=STOP_COMMAND_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {STOP_COMMAND_TIMEOUT_S:.0f}s"
    except OSError as error:
        return 127, str(error)
    output = (done.stdout + done.stderr).strip()
    return done.returncode, output[-2000:]


class Watchdog:
    """The rule, the host's jobs and the stop command, with every step logged."""

    def __init__(
        self,
        tracker: IdleTracker,
        jobs: Callable[[], list[str]],
        stop_command: str | None,
        log: TextIO,
        run_stop: Callable[[str], tuple[int, str]] = run_stop_command,
    ) -> None:
        self.tracker = tracker
        self.jobs = jobs
        self.stop_command = stop_command
        self.log = log
        self.run_stop = run_stop
        self.gpus_seen = 0

    def emit(self, record: dict[str, Any] | Decision) -> None:
        line = record.to_json() if isinstance(record, Decision) else json.dumps(record)
        print(line, file=self.log, flush=True)

    def step(self, timestamp: float, gpu_utils: Sequence[int | None]) -> bool:
        """One sample; True once the stop command has run and succeeded."""
        utils = list(gpu_utils)
        # A GPU seen earlier that no longer answers is unreadable, not absent.
        utils += [None] * (self.gpus_seen - len(utils))
        self.gpus_seen = len(utils)
        decision = self.tracker.observe(timestamp, utils, self.jobs())
        self.emit(decision)
        if decision.decision != STOP or self.stop_command is None:
            return False
        code, output = self.run_stop(self.stop_command)
        self.emit(
            {
                "time": round(time.time(), 3),
                "event": "stop-command",
                "command": self.stop_command,
                "exit_code": code,
                "output": output,
            }
        )
        return code == 0


# CLI ----------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``900``, ``900s``, ``15m`` or ``1.5h``."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 900, 90s, 15m, 1h)")
    scale = {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    return float(match.group(1)) * scale


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainers.idle",
        description="Stop this host once no gputui job runs and every GPU stays idle for a window.",
    )
    parser.add_argument("--stop-command", metavar="CMD", help="run through the shell to stop")
    parser.add_argument("--dry-run", action="store_true", help="log would-stop, never stop")
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD_PCT,
        metavar="PCT",
        help="a GPU at or above this utilization %% is busy (default 5)",
    )
    parser.add_argument(
        "--window",
        type=parse_duration,
        default=DEFAULT_WINDOW_S,
        metavar="DURATION",
        help="how long the host must stay idle (default 15m)",
    )
    parser.add_argument(
        "--interval",
        type=parse_duration,
        default=DEFAULT_INTERVAL_S,
        metavar="DURATION",
        help="time between samples (default 30s)",
    )
    parser.add_argument(
        "--jobs-root", type=Path, default=None, metavar="DIR", help="default ~/.gputui/jobs"
    )
    parser.add_argument(
        "--replay", type=Path, metavar="FILE", help="read samples (JSON lines) instead of GPUs"
    )
    return parser


def _replay_samples(path: Path) -> Iterable[tuple[float, list[int | None]]]:
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                sample = HostSample.from_json(line)
            except SampleFormatError as error:
                raise SampleFormatError(f"{path}:{number}: {error}") from None
            yield sample.timestamp, [gpu.utilization_pct for gpu in sample.gpus]


def _live_samples(interval: float) -> Iterable[tuple[float, list[int | None]]]:
    from trainers.nvml import Nvml

    nvml = Nvml()
    try:
        while True:
            started = time.monotonic()
            gpus = nvml.read_gpus(lambda pid: (None, None))
            yield time.time(), [gpu.utilization_pct for gpu in gpus]
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        nvml.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.dry_run and not args.stop_command:
        print("trainers.idle: give --stop-command, or --dry-run to only log", file=sys.stderr)
        return 2
    if args.window <= 0 or args.interval <= 0:
        print("trainers.idle: --window and --interval must be more than 0", file=sys.stderr)
        return 2
    if args.replay is not None and not args.replay.is_file():
        print(f"trainers.idle: no such replay file: {args.replay}", file=sys.stderr)
        return 2
    root = args.jobs_root or jobdir.jobs_root()
    watchdog = Watchdog(
        IdleTracker(IdleRule(args.threshold, args.window), dry_run=args.dry_run),
        jobs=lambda: other_running_jobs(root),
        stop_command=None if args.dry_run else args.stop_command,
        log=sys.stdout,
    )
    watchdog.emit(
        {
            "time": round(time.time(), 3),
            "event": "start",
            "threshold_pct": args.threshold,
            "window_s": args.window,
            "interval_s": args.interval,
            "dry_run": args.dry_run,
            "stop_command": args.stop_command,
            "jobs_root": str(root),
            "replay": str(args.replay) if args.replay else None,
        }
    )
    samples = _replay_samples(args.replay) if args.replay else _live_samples(args.interval)
    try:
        for timestamp, utils in samples:
            if watchdog.step(timestamp, utils):
                return 0
    except SampleFormatError as error:
        print(f"trainers.idle: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
