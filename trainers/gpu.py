"""The GPU-host sampler: NVML for the GPUs, psutil for the host, one JSON line per sample.

    python -m trainers.gpu --once --json               one sample, then exit
    python -m trainers.gpu --stream --interval 1 --json  a sample every second until killed
    python -m trainers.gpu --workdir /workspace          disk free where the job writes

The line format is ``protocol.gpu_sample.HostSample`` (documented there). A host without an NVIDIA
driver or GPU still gets its host part, with ``gpu_status`` saying why there are no GPUs.

Starts in tens of milliseconds: no torch, and pynvml and psutil are imported only when a sample
is taken. The GPUs are read by ``nvml.py``, the host by ``host_stats.py``; ``--record-nvml``
(``nvml_record.py``) writes a driver's answers for the tests to replay.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from trainers.host_stats import HostReader, describe_process
from trainers.nvml import Nvml
from trainers.nvml_record import record_nvml
from trainers.protocol.gpu_sample import HostSample
from trainers.protocol.sample_text import format_human

#: How long ``--once`` watches the CPU and network counters to turn them into rates.
ONCE_WINDOW_S = 0.25


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
