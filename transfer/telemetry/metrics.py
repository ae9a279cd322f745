"""A job's progress lines (``protocol.progress``), followed from the host and kept as one curve.

The trainer appends one JSON line per event to its run's ``metrics.jsonl`` and the job folder
links to that file (``protocol.jobdir.METRICS_LINK``). Following it is following a log: the same
byte offset that moves only past complete lines, so a dropped link costs no line and repeats none,
and a job that writes no metrics simply yields no lines. An app that starts again reads the file
from the start: progress files are small, and ``RunMetrics`` keeps a bounded curve however long
the run is.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass, fields

from trainers.protocol.jobdir import METRICS_LINK
from trainers.protocol.progress import ProgressLine, dedupe_steps
from transfer.jobs.events import LogEnded, LogLines, LogReconnecting, LogResumed
from transfer.jobs.host import HostJobs
from transfer.jobs.logs import RECONNECT_FOR_S, follow_job_file
from transfer.telemetry.cost import JobCost, job_cost

#: A trainer writes a line per step at most; looking once a second is plenty.
POLL_S = 1.0
#: Points of the curve kept in memory; beyond this the curve is thinned to half its points.
MAX_POINTS = 4096
#: The largest count (step, tokens…) a progress line may hold: any float still holds it exactly.
MAX_COUNT = 2**53

#: What each field of a progress line must hold; a line with anything else is skipped. Losses
#: and the gradient norm may be NaN or infinite (a diverging run says so); other numbers may not.
_COUNTS = ("v", "resume_idx", "step", "total_steps", "tokens_seen", "size_bytes")
_FINITE = ("time", "elapsed", "lr", "tok_s", "eta", "seconds")
_MEASURED = ("loss", "grad_norm", "eval_loss")
_TEXTS = ("run_id", "path", "reason")
_OPTIONAL = {f.name for f in fields(ProgressLine) if f.default is None}


@dataclass(frozen=True)
class MetricsLines:
    """A batch of progress lines; ``offset`` is where following on from them starts.

    ``skipped`` counts complete lines that were not progress lines (a torn last line of a job
    that was killed mid-write, or text from something else).
    """

    lines: list[ProgressLine]
    offset: int
    skipped: int = 0


MetricsEvent = MetricsLines | LogReconnecting | LogResumed | LogEnded


async def metrics_path(jobs: HostJobs, job_id: str) -> str:
    return f"{await jobs.job_dir(job_id)}/{METRICS_LINK}"


def parse_lines(texts: Iterable[str]) -> tuple[list[ProgressLine], int]:
    """The progress lines among ``texts`` and how many others there were (blank ones aside)."""
    parsed: list[ProgressLine] = []
    skipped = 0
    for text in texts:
        if not text.strip():
            continue
        try:
            line = ProgressLine.from_json(text)
        except (ValueError, TypeError, RecursionError):
            skipped += 1
            continue
        if well_formed(line):
            parsed.append(line)
        else:
            skipped += 1
    return parsed, skipped


def well_formed(line: ProgressLine) -> bool:
    """Whether every field holds what its kind allows: the host wrote the file, and one string
    where a count goes, or an infinite ETA, must not reach the curve or the pane."""
    for name, allowed in (
        *((name, _count) for name in _COUNTS),
        *((name, _finite) for name in _FINITE),
        *((name, _number) for name in _MEASURED),
        *((name, _text) for name in _TEXTS),
    ):
        value = getattr(line, name)
        if not (allowed(value) or (value is None and name in _OPTIONAL)):
            return False
    return True


def _count(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_COUNT


def _number(value: object) -> bool:
    if type(value) not in (int, float):
        return False
    try:
        float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int too large for a float
        return False
    return True


def _finite(value: object) -> bool:
    return _number(value) and math.isfinite(value)  # type: ignore[arg-type]


def _text(value: object) -> bool:
    return isinstance(value, str)


async def follow_metrics(
    jobs: HostJobs,
    job_id: str,
    *,
    offset: int = 0,
    follow: bool = True,
    poll_s: float = POLL_S,
    reconnect_for_s: float = RECONNECT_FOR_S,
) -> AsyncGenerator[MetricsEvent, None]:
    """Yield the progress lines of ``job_id`` from ``offset``, in batches.

    With ``follow``, keep going until the job has ended and its metrics are read to the end,
    riding out dropped links (``LogReconnecting``, then ``LogResumed``), and end with
    ``LogEnded``; without it, stop at the current end of the file.
    """
    events = follow_job_file(
        jobs,
        job_id,
        await metrics_path(jobs, job_id),
        offset=offset,
        follow=follow,
        poll_s=poll_s,
        reconnect_for_s=reconnect_for_s,
    )
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, LogLines):
                if event.lines:  # a torn last line (``partial``) is not a record yet
                    lines, skipped = parse_lines(event.lines)
                    yield MetricsLines(lines=lines, offset=event.offset, skipped=skipped)
            else:
                yield event


@dataclass(frozen=True)
class Curve:
    """Points to plot: steps with their loss, and steps with their learning rate."""

    loss_steps: list[int]
    loss: list[float]
    lr_steps: list[int]
    lr: list[float]


class RunMetrics:
    """One run's progress as read so far: the step curve and the latest facts.

    The curve is the run's step lines with the steps a resume repeated dropped
    (``protocol.progress.dedupe_steps``); past ``max_points`` every other point goes, so a long
    run costs bounded memory and the curve keeps its shape.
    """

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self.max_points = max(2, max_points)
        self.steps: list[ProgressLine] = []
        self.latest: ProgressLine | None = None
        self.last_eval: ProgressLine | None = None
        self.last_checkpoint: ProgressLine | None = None
        self.lines_read = 0
        self.skipped = 0
        self.offset = 0

    def feed(self, lines: Sequence[ProgressLine], *, offset: int | None = None) -> None:
        if offset is not None:
            self.offset = offset
        if not lines:
            return
        self.lines_read += len(lines)
        self.steps = dedupe_steps([*self.steps, *lines])
        if len(self.steps) > self.max_points:
            self.steps = [*self.steps[:-1:2], self.steps[-1]]
        for line in lines:
            self.latest = line
            if line.event == "eval":
                self.last_eval = line
            elif line.event == "checkpoint":
                self.last_checkpoint = line
            elif (
                line.event == "resume"
                and self.last_eval is not None
                and self.last_eval.step > line.step
            ):
                self.last_eval = None  # that eval was of steps the resume repeats

    def add(self, event: MetricsLines) -> None:
        self.skipped += event.skipped
        self.feed(event.lines, offset=event.offset)

    # -- the facts the pane shows --------------------------------------------------------------
    @property
    def has_data(self) -> bool:
        return self.latest is not None

    @property
    def last_step(self) -> ProgressLine | None:
        return self.steps[-1] if self.steps else None

    @property
    def step(self) -> int | None:
        return None if self.latest is None else self.latest.step

    @property
    def total_steps(self) -> int | None:
        return None if self.latest is None else self.latest.total_steps

    @property
    def fraction(self) -> float | None:
        if self.latest is None or self.latest.total_steps <= 0:
            return None
        return min(1.0, max(0.0, self.latest.step / self.latest.total_steps))

    @property
    def resume_idx(self) -> int | None:
        return None if self.latest is None else self.latest.resume_idx

    @property
    def finished(self) -> bool:
        return self.latest is not None and self.latest.event == "done"

    @property
    def preempted(self) -> bool:
        return self.latest is not None and self.latest.event == "preempted"

    @property
    def loss(self) -> float | None:
        if self.finished and self.latest is not None and self.latest.loss is not None:
            return self.latest.loss
        last = self.last_step
        return None if last is None else last.loss

    @property
    def lr(self) -> float | None:
        last = self.last_step
        return None if last is None else last.lr

    @property
    def tok_s(self) -> float | None:
        last = self.last_step
        return None if last is None else last.tok_s

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the last reported pace; 0 once the run is done."""
        if self.finished:
            return 0.0
        last = self.last_step
        return None if last is None else last.eta

    @property
    def elapsed_s(self) -> float | None:
        """Training seconds over every start of the run."""
        return None if self.latest is None else self.latest.elapsed

    def cost(self, rate_usd_per_hour: float) -> JobCost:
        """The run's training time so far, and what the ETA will add, at the host's rate."""
        return job_cost(rate_usd_per_hour, self.elapsed_s, self.eta_s)

    def curve(self, points: int) -> Curve:
        """At most about ``points`` points of the loss and lr curves (NaN and missing left out)."""
        stride = max(1, math.ceil(len(self.steps) / max(1, points)))
        shown = self.steps[::stride]
        if self.steps and shown[-1] is not self.steps[-1]:
            shown.append(self.steps[-1])
        with_loss = [p for p in shown if _finite(p.loss)]
        with_lr = [p for p in shown if _finite(p.lr)]
        return Curve(
            loss_steps=[p.step for p in with_loss],
            loss=[float(p.loss or 0.0) for p in with_loss],
            lr_steps=[p.step for p in with_lr],
            lr=[float(p.lr or 0.0) for p in with_lr],
        )
