"""One telemetry stream per host: samples at a fixed interval, ageing when the host goes quiet.

``TelemetryStream(host).events()`` yields :mod:`transfer.telemetry.events` until cancelled:

- every host, the local one included, runs the best source that :mod:`transfer.telemetry.source`
  finds there, read through its link by :mod:`transfer.telemetry.readers`;
- the gputui jobs of the host are read every ``jobs_interval`` seconds (the idle rule needs them).

Polls never overlap: each one is re-armed after the previous one finished. When the link drops,
the last good sample is kept and reported again with its age (``TelemetryStale``) every interval
while the stream reconnects with backoff; a host key to check or a refused key ends the stream
with a fatal ``TelemetryError``, since retrying cannot fix those. The link may be one the app
shares between its services: the stream then uses it and leaves it open.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from trainers.protocol.gpu_sample import HostSample, SampleFormatError
from transfer.backoff import Backoff
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
from transfer.telemetry import DEFAULT_INTERVAL_S, source
from transfer.telemetry.events import (
    TelemetryError,
    TelemetryEvent,
    TelemetryJobs,
    TelemetrySample,
    TelemetryStale,
)
from transfer.telemetry.readers import SampleReader

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

JOBS_INTERVAL_S = 30.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0

Emit = Callable[[TelemetryEvent], None]


def stale_after(interval: float) -> float:
    """How long without a sample before the last one is reported stale."""
    return max(3.0 * interval, 3.0)


class TelemetryStream:
    """Samples of one host. ``link`` may be given (the app's shared link of the host, or one a
    test tuned); it is closed with the stream only when the stream opened it."""

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
        self.backoff = Backoff(initial_s=first_backoff_s, cap_s=max_backoff_s)
        self.stale_after = stale_after(interval) if stale_after_s is None else stale_after_s
        self._link = link
        self._owns_link = link is None
        self._last: HostSample | None = None
        self._received_at: float | None = None
        self._started_at = clock()
        self._down: str | None = None
        self._retries = self.backoff.start()

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
                await self._run(emit)
                raise RemoteCommandFailed(f"the telemetry of {self.host.name} ended")
            except FATAL_ERRORS as error:
                emit(TelemetryError(self.host.name, str(error), fatal=True))
                return
            except RETRY_ERRORS as error:
                if isinstance(error, RemoteCommandFailed):
                    source.forget(self.host)
                self._went_down(_message(error), emit)
            await self._retries.wait()

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
        self._retries.reset()
        emit(TelemetrySample(self.host.name, sample, self._received_at))

    # -- the samples ----------------------------------------------------------------------
    def _reader(self, emit: Emit) -> SampleReader:
        return SampleReader(
            self.host,
            self.interval,
            got=lambda sample: self._got(sample, emit),
            problem=lambda message: emit(TelemetryError(self.host.name, message)),
            clock=self.clock,
        )

    async def _run(self, emit: Emit) -> None:
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
        reader = self._reader(emit)
        await _until_first_fails(self._jobs_loop(emit), *reader.loops(link, detection))

    # -- jobs ----------------------------------------------------------------------------------
    async def _jobs_loop(self, emit: Emit) -> None:
        """The host's gputui jobs; a failure here says "unknown" and never stops the samples."""
        host_jobs = HostJobs(self.link)
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
            link = self.link
            await link.connect()
            detection = await source.detect(link, self.host)
            return await self._reader(lambda event: None).once(link, detection)
        finally:
            await self.close()


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
