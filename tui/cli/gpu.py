"""``gputui gpu HOST``: the host's GPUs and the machine around them, once or live.

    gputui gpu a100 --once --json     one HostSample JSON line (the protocol.gpu_sample schema)
    gputui gpu a100                   a sample every --interval seconds until Ctrl-C
    gputui gpu a100 --json            the same as JSON lines, for scripts

The live form reconnects by itself when the link drops, and says on stderr how old the last
sample is meanwhile; a host key to check or a refused key ends it with one line. GPU and process
names come from the host: the human form shows their control characters escaped.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from trainers.protocol.gpu_sample import HostSample
from trainers.protocol.sample_text import format_human
from transfer.errors import GputuiError
from transfer.hosts import HostStore
from transfer.telemetry import DEFAULT_INTERVAL_S
from transfer.telemetry.events import TelemetryError, TelemetrySample, TelemetryStale
from tui.cli.common import UsageError, print_error
from tui.text import terminal_safe

if TYPE_CHECKING:
    from transfer.telemetry.stream import TelemetryStream


def register(subparsers: Any) -> None:
    gpu = subparsers.add_parser(
        "gpu",
        help="show a host's GPUs, CPU, memory, disk and network",
        description="Sample a host's GPUs (utilization, memory, temperature, power, processes) "
        "and the host around them: through gputui's sampler when it is installed there, "
        "else nvidia-smi and /proc.",
    )
    gpu.add_argument("name", metavar="HOST")
    gpu.add_argument("--once", action="store_true", help="one sample, then exit")
    gpu.add_argument("--json", action="store_true", help="JSON lines (HostSample schema)")
    gpu.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL_S,
        metavar="S",
        help="seconds between live samples (default 1)",
    )
    gpu.set_defaults(handler=show_gpu)


def show_gpu(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise UsageError("--interval must be more than 0 seconds")
    host = HostStore().get(args.name)
    # The stream's modules load with this verb, not with every `gputui` (the app among them).
    from transfer.telemetry.stream import TelemetryStream

    stream = TelemetryStream(host, interval=args.interval)
    if args.once:
        _print(asyncio.run(stream.once()), args.json)
        return 0
    return asyncio.run(_follow(stream, args.json))


async def _follow(stream: TelemetryStream, as_json: bool) -> int:
    async for event in stream.events():
        if isinstance(event, TelemetrySample):
            _print(event.sample, as_json, live=True)
        elif isinstance(event, TelemetryStale):
            print_error(f"{event.host}: last sample {event.age:.0f} s old: {event.reason}")
        elif isinstance(event, TelemetryError):
            if event.fatal:
                raise GputuiError(event.message)
            print_error(f"{event.host}: {event.message}")
    return 0


def _print(sample: HostSample, as_json: bool, *, live: bool = False) -> None:
    """A JSON line, or the human summary (followed by a blank line between live samples)."""
    if as_json:
        text = sample.to_json()
    else:
        text = terminal_safe(format_human(sample), keep_layout=True) + ("\n" if live else "")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
