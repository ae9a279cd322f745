"""One telemetry stream per host: samples at a fixed interval, ageing when the host goes quiet.

``TelemetryStream(host).events()`` yields :mod:`transfer.telemetry.events` until cancelled:

- the local host is sampled in-process (``trainers.gpu`` in a worker thread);
- a remote host runs the best source that :mod:`transfer.telemetry.source` finds there;
- the gputui jobs of the host are read every ``jobs_interval`` seconds (the idle rule needs them).

Polls never overlap: each one is re-armed after the previous one finished. When the link drops,
the last good sample is kept and reported again with its age (``TelemetryStale``) every interval
while the stream reconnects with backoff; a host key to check or a refused key ends the stream
with a fatal ``TelemetryError``, since retrying cannot fix those.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any

from trainers.protocol.gpu_sample import GPU_STATUS_OK, HostSample, HostStats, SampleFormatError
from trainers.protocol.smi import (
    GpuBlockAssembler,
    ProcSnapshot,
    SmiGpuTable,
    parse_apps_csv,
    smi_status,
)
from transfer.connect import open_link
from transfer.errors import (
    AuthenticationFailed,
    ConfigError,
    GputuiError,
    HostKeyChanged,
    HostKeyUnknown,
    HostNotFound,
    LinkLost,
    RemoteCommandFailed,
)
from transfer.hosts import HostProfile
from transfer.jobs.host import HostJobs
from transfer.link import Link
from transfer.telemetry import source
from transfer.telemetry.events import (
    TelemetryError,
    TelemetryEvent,
    TelemetryJobs,
    TelemetrySample,
    TelemetryStale,
)

#: Failures that retrying cannot fix: the stream stops and says why.
FATAL_ERRORS: tuple[type[GputuiError], ...] = (
    HostKeyUnknown,
    HostKeyChanged,
    AuthenticationFailed,
    ConfigError,
    HostNotFound,
)
#: Failures worth another try after a pause: the link, the host, a command that broke.
RETRY_ERRORS = (GputuiError, OSError, asyncio.TimeoutError, SampleFormatError)

DEFAULT_INTERVAL_S = 1.0
JOBS_INTERVAL_S = 30.0
TICK_TIMEOUT_S = 30.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0

Emit = Callable[[TelemetryEvent], None]


def stale_after(interval: float) -> float:
    """How long without a sample before the last one is reported stale."""
    return max(3.0 * interval, 3.0)


class TelemetryStream:
    """Samples of one host. ``link`` may be given (tests tune its backoff); it is closed with
    the stream only when the stream opened it."""

    def __init__(
        self,
        host: HostProfile,
        *,
        interval: float = DEFAULT_INTERVAL_S,
        jobs_interval: float = JOBS_INTERVAL_S,
        link: Link | None = None,
        clock: Callable[[], float] = time.time,
        first_backoff_s: float = FIRST_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        stale_after_s: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be more than 0 seconds")
        self.host = host
        self.interval = interval
        self.jobs_interval = jobs_interval
        self.clock = clock
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.stale_after = stale_after(interval) if stale_after_s is None else stale_after_s
        self._link = link
        self._owns_link = link is None
        self._last: HostSample | None = None
        self._received_at: float | None = None
        self._started_at = clock()
        self._down: str | None = None
        self._backoff = first_backoff_s
        # nvidia-smi source: the latest /proc snapshots and processes between GPU ticks.
        self._proc: ProcSnapshot | None = None
        self._proc_before: ProcSnapshot | None = None
        self._apps: str | None = None

    @property
    def link(self) -> Link:
        if self._link is None:
            self._link = open_link(self.host)
        return self._link

    @property
    def last(self) -> HostSample | None:
        return self._last

    # -- the event stream --------------------------------------------------------------------
    async def events(self) -> AsyncGenerator[TelemetryEvent, None]:
        queue: asyncio.Queue[TelemetryEvent | BaseException] = asyncio.Queue()
        emit: Emit = queue.put_nowait
        producer = asyncio.ensure_future(self._produce(emit))
        producer.add_done_callback(lambda task: _report_crash(task, queue))
        ticker = asyncio.ensure_future(self._age(emit))
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, TelemetryError) and item.fatal:
                    return
        finally:
            for task in (producer, ticker):
                task.cancel()
            for task in (producer, ticker):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.close()

    async def close(self) -> None:
        if self._owns_link and self._link is not None:
            with contextlib.suppress(Exception):
                await self._link.close()
            self._link = None

    async def _produce(self, emit: Emit) -> None:
        while True:
            try:
                if self.host.is_local:
                    await self._run_local(emit)
                else:
                    await self._run_remote(emit)
                raise RemoteCommandFailed(f"the telemetry of {self.host.name} ended")
            except FATAL_ERRORS as error:
                emit(TelemetryError(self.host.name, str(error), fatal=True))
                return
            except RETRY_ERRORS as error:
                if isinstance(error, RemoteCommandFailed):
                    source.forget(self.host)
                self._went_down(_message(error), emit)
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, self.max_backoff_s)

    def _went_down(self, reason: str, emit: Emit) -> None:
        self._down = reason
        if self._received_at is None:
            emit(TelemetryError(self.host.name, reason))
        else:
            emit(TelemetryStale(self.host.name, self._age_now(), reason, self._last))

    def _age_now(self) -> float:
        since = self._received_at if self._received_at is not None else self._started_at
        return max(0.0, self.clock() - since)

    async def _age(self, emit: Emit) -> None:
        """Report the last sample again, older each time, while no new one arrives."""
        while True:
            await asyncio.sleep(self.interval)
            age = self._age_now()
            if self._received_at is not None and age >= self.stale_after:
                reason = self._down or f"no sample for {age:.0f} s"
                emit(TelemetryStale(self.host.name, age, reason, self._last))

    def _got(self, sample: HostSample, emit: Emit) -> None:
        self._last, self._received_at, self._down = sample, self.clock(), None
        self._backoff = self.first_backoff_s
        emit(TelemetrySample(self.host.name, sample, self._received_at))

    # -- the local host ----------------------------------------------------------------------
    async def _run_local(self, emit: Emit) -> None:
        from trainers.gpu import ONCE_WINDOW_S, Sampler

        sampler = Sampler(Path(self.host.workdir).expanduser())
        await asyncio.to_thread(sampler.prime)
        try:
            await _until_first_fails(
                self._jobs_loop(emit),
                self._local_loop(sampler, min(self.interval, ONCE_WINDOW_S), emit),
            )
        finally:
            await asyncio.to_thread(sampler.nvml.close)

    async def _local_loop(self, sampler: Any, first_wait: float, emit: Emit) -> None:
        await asyncio.sleep(first_wait)
        while True:
            started = time.monotonic()
            self._got(await asyncio.to_thread(sampler.sample), emit)
            await _rest(self.interval, started)

    # -- a remote host -----------------------------------------------------------------------
    async def _run_remote(self, emit: Emit) -> None:
        link = self.link
        await link.connect()
        detection = await source.detect(link, self.host)
        if detection.activation_failed:
            emit(
                TelemetryError(
                    self.host.name,
                    f"the environment activation of {self.host.name} failed "
                    f"({self.host.env_activation!r}); reading telemetry without it",
                )
            )
        loops: list[Awaitable[None]] = [self._jobs_loop(emit)]
        if detection.mode == "sampler" and detection.python:
            loops.append(self._sampler_loop(link, detection.python, emit))
        elif detection.mode == "nvidia-smi":
            self._proc = self._proc_before = None
            self._apps = None
            loops.append(self._smi_loop(link, detection, emit))
            loops.append(self._tick_loop(link, detection, emit, with_gpus=True))
        else:
            self._proc = self._proc_before = None
            loops.append(self._tick_loop(link, detection, emit, with_gpus=False))
        await _until_first_fails(*loops)

    async def _sampler_loop(self, link: Link, python: str, emit: Emit) -> None:
        command = source.sampler_command(self.host, python, self.interval)
        async for line in link.stream(command):
            if not line.strip():
                continue
            try:
                sample = HostSample.from_json(line)
            except SampleFormatError as error:
                emit(TelemetryError(self.host.name, f"{self.host.name}: {error}"))
                continue
            self._got(sample, emit)

    async def _smi_loop(self, link: Link, detection: source.Detection, emit: Emit) -> None:
        assembler = GpuBlockAssembler(detection.gpu_count)
        async for line in link.stream(source.smi_stream_command(self.host, self.interval)):
            for table in assembler.feed(line):
                # The first tick waits for the first /proc read, so that no sample lacks it.
                if self._proc is not None:
                    self._got(self._smi_sample(table, detection), emit)

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

    async def _tick_loop(
        self, link: Link, detection: source.Detection, emit: Emit, *, with_gpus: bool
    ) -> None:
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
            self._got(
                HostSample(
                    timestamp=round(self.clock(), 3),
                    gpu_status=detection.gpu_status,
                    hostname=detection.hostname,
                    source="nvidia-smi",
                    host=self._host_stats(),
                ),
                emit,
            )

    # -- jobs ----------------------------------------------------------------------------------
    async def _jobs_loop(self, emit: Emit) -> None:
        """The host's gputui jobs; a failure here says "unknown" and never stops the samples."""
        jobs_link = open_link(self.host) if self.host.is_local else self.link
        host_jobs = HostJobs(jobs_link)
        while True:
            started = time.monotonic()
            try:
                jobs = tuple(await host_jobs.list())
            except RETRY_ERRORS as error:
                emit(TelemetryJobs(self.host.name, None, self.clock(), _message(error)))
            else:
                emit(TelemetryJobs(self.host.name, jobs, self.clock()))
            await _rest(self.jobs_interval, started)

    # -- one sample --------------------------------------------------------------------------
    async def once(self) -> HostSample:
        """One complete sample, or the error that prevented it (no retry)."""
        try:
            if self.host.is_local:
                return await asyncio.to_thread(_local_once, self.host)
            link = self.link
            await link.connect()
            detection = await source.detect(link, self.host)
            return await self._remote_once(link, detection)
        finally:
            await self.close()

    async def _remote_once(self, link: Link, detection: source.Detection) -> HostSample:
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
        from trainers.protocol.smi import sample_from_smi

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


def _local_once(host: HostProfile) -> HostSample:
    from trainers.gpu import ONCE_WINDOW_S, Sampler

    sampler = Sampler(Path(host.workdir).expanduser())
    try:
        sampler.prime()
        time.sleep(ONCE_WINDOW_S)
        return sampler.sample()
    finally:
        sampler.nvml.close()


async def _rest(interval: float, started: float) -> None:
    """Sleep out the rest of the interval; a slow poll gets a short pause, never an overlap."""
    elapsed = time.monotonic() - started
    await asyncio.sleep(max(interval - elapsed, interval * 0.1))


async def _until_first_fails(*loops: Awaitable[None]) -> None:
    """Run the loops together; the first one to end (they only end by failing) ends them all."""
    tasks = [asyncio.ensure_future(loop) for loop in loops]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _message(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    if isinstance(error, LinkLost):
        return "connection lost; reconnecting"
    return str(error) or type(error).__name__


def _report_crash(task: asyncio.Future[None], queue: asyncio.Queue[Any]) -> None:
    """A bug in the producer reaches the reader with its traceback instead of a silent stop."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        queue.put_nowait(error)
