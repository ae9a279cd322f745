"""Reading samples from a host through its link, by the source that detection chose.

- ``sampler``: ``python -m trainers.gpu --stream`` prints complete samples itself;
- ``nvidia-smi``: the GPU table streams from ``nvidia-smi --loop-ms``, and a loop on the host
  reads ``/proc`` and the GPU processes every interval; each table tick makes a sample;
- ``proc``: that loop alone makes the samples, with ``gpu_status`` saying why there are no GPUs.

The local host is read the same way, through its link, as any other.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from trainers.protocol.gpu_sample import GPU_STATUS_OK, HostSample, HostStats, SampleFormatError
from trainers.protocol.smi import (
    GpuBlockAssembler,
    ProcSnapshot,
    SmiGpuTable,
    parse_apps_csv,
    sample_from_smi,
    smi_status,
)
from transfer.errors import RemoteCommandFailed
from transfer.hosts import HostProfile
from transfer.link import Link
from transfer.telemetry import source

TICK_TIMEOUT_S = 30.0

Got = Callable[[HostSample], None]
Problem = Callable[[str], None]


class SampleReader:
    """The loops that turn one host's source into samples; ``got`` receives each sample and
    ``problem`` each line that could not be read (the stream goes on)."""

    def __init__(
        self,
        host: HostProfile,
        interval: float,
        got: Got,
        problem: Problem,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.interval = interval
        self.got = got
        self.problem = problem
        self.clock = clock
        # nvidia-smi source: the latest /proc snapshots and processes between GPU ticks.
        self._proc: ProcSnapshot | None = None
        self._proc_before: ProcSnapshot | None = None
        self._apps: str | None = None

    def loops(self, link: Link, detection: source.Detection) -> list[Awaitable[None]]:
        """The loops that read the chosen source; they run together and end only by failing."""
        self._proc = self._proc_before = None
        self._apps = None
        if detection.mode == "sampler" and detection.python:
            return [self._sampler_loop(link, detection.python)]
        if detection.mode == "nvidia-smi":
            return [
                self._smi_loop(link, detection),
                self._tick_loop(link, detection, with_gpus=True),
            ]
        return [self._tick_loop(link, detection, with_gpus=False)]

    async def _sampler_loop(self, link: Link, python: str) -> None:
        command = source.sampler_command(self.host, python, self.interval)
        async for line in link.stream(command):
            if not line.strip():
                continue
            try:
                sample = HostSample.from_json(line)
            except SampleFormatError as error:
                self.problem(f"{self.host.name}: {error}")
                continue
            self.got(sample)

    async def _smi_loop(self, link: Link, detection: source.Detection) -> None:
        assembler = GpuBlockAssembler(detection.gpu_count)
        async for line in link.stream(source.smi_stream_command(self.host, self.interval)):
            for table in assembler.feed(line):
                # The first tick waits for the first /proc read, so that no sample lacks it.
                if self._proc is not None:
                    self.got(self._smi_sample(table, detection))

    def _smi_sample(self, table: SmiGpuTable, detection: source.Detection) -> HostSample:
        """One tick of the GPU table with the latest /proc snapshot and processes."""
        if self._apps:
            by_uuid = parse_apps_csv(self._apps)
            for gpu in table.gpus:
                gpu.processes = sorted(by_uuid.get(gpu.uuid or "", []), key=lambda p: p.pid)
        status = GPU_STATUS_OK if table.gpus else "no NVIDIA GPU found"
        if table.unparsed and not table.gpus:
            status = smi_status(1, "\n".join(table.unparsed))
        return HostSample(
            timestamp=round(self.clock(), 3),
            gpu_status=status,
            hostname=detection.hostname,
            source="nvidia-smi",
            driver_version=table.driver_version,
            gpus=table.gpus,
            host=self._host_stats(),
        )

    def _host_stats(self) -> HostStats:
        if self._proc is None:
            return HostStats(disk_path=self.host.workdir)
        return self._proc.host_stats(self._proc_before, self.host.workdir)

    async def _tick_loop(self, link: Link, detection: source.Detection, *, with_gpus: bool) -> None:
        """The /proc reading (and GPU processes) every interval; without GPUs, the samples."""
        command = source.tick_command(self.host, with_gpus, self.interval)
        lines: list[str] = []
        async for line in link.stream(command):
            if line != source.TICK_END:
                lines.append(line)
                continue
            proc_text, apps = source.split_tick("\n".join(lines) + "\n")
            lines = []
            self._proc_before, self._proc = self._proc, ProcSnapshot.parse(proc_text, self.clock())
            if with_gpus:
                self._apps = apps
                continue
            self.got(
                HostSample(
                    timestamp=round(self.clock(), 3),
                    gpu_status=detection.gpu_status,
                    hostname=detection.hostname,
                    source="nvidia-smi",
                    host=self._host_stats(),
                )
            )

    async def once(self, link: Link, detection: source.Detection) -> HostSample:
        """One complete sample from one command (no retry)."""
        if detection.mode == "sampler" and detection.python:
            command = source.sampler_command(self.host, detection.python, None)
            result = await link.run(command, timeout=TICK_TIMEOUT_S)
            lines = [line for line in result.stdout.splitlines() if line.strip()]
            if result.exit_status != 0 or not lines:
                source.forget(self.host)
                result.check()
                raise RemoteCommandFailed(f"the sampler on {self.host.name} printed no sample")
            return HostSample.from_json(lines[-1])
        with_gpus = detection.mode == "nvidia-smi"
        result = await link.run(source.once_command(self.host, with_gpus), timeout=TICK_TIMEOUT_S)
        output = source.OnceOutput.parse(result.stdout)
        now = self.clock()
        before, after = output.snapshots(now)
        status = detection.gpu_status
        if with_gpus:
            status = smi_status(output.gpu_exit or 0, output.gpu_csv or "")
        return sample_from_smi(
            round(now, 3),
            output.gpu_csv if status == GPU_STATUS_OK else None,
            output.apps_csv,
            proc=after,
            previous_proc=before,
            gpu_status=status,
            hostname=detection.hostname,
            workdir=self.host.workdir,
        )
