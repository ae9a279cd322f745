"""Progress lines of a training run: the contract between the trainer and whoever tails it.

The trainer appends one JSON object per line to ``<output_dir>/metrics.jsonl`` and flushes after
every line, so a tail over SSH never sees half a record; it also prints a short human line to
stdout. This module imports only the standard library, so the laptop side can parse lines without
torch.

Every line has these keys:

``v``            schema version (1)
``event``        ``step`` | ``eval`` | ``checkpoint`` | ``resume`` | ``preempted`` | ``done``
``run_id``       stays the same across resumes of one run
``resume_idx``   0 for the first start, +1 for every resume
``step``         optimiser steps completed when the line was written
``total_steps``  the step the run ends at
``time``         Unix time of the line (seconds)
``elapsed``      training seconds summed over all starts of the run
``tokens_seen``  non-padding input tokens of the steps trained so far

and, where the event has them (otherwise ``null``):

``loss``         mean loss over the assistant tokens of the step (``step``, ``done``)
``lr``           learning rate used for the step
``grad_norm``    gradient norm before clipping
``tok_s``        tokens per second of this start, averaged since it began
``eta``          seconds left to ``total_steps`` at the current pace
``eval_loss``    mean loss over the held-out rows (``eval``)
``path``         checkpoint folder (``checkpoint``, ``resume``) or adapter folder (``done``)
``size_bytes``   bytes of the committed checkpoint (``checkpoint``)
``seconds``      time taken to write and commit the checkpoint (``checkpoint``)
``reason``       what stopped the run: ``SIGTERM``, ``SIGINT``, ``spot-notice`` (``preempted``);
                 ``config-changed`` when a resumed run's config differs (``resume``)

A resumed run repeats the steps after its last checkpoint, so a reader that sees a ``resume`` line
drops the lines of steps above its ``step`` that came before it (``dedupe_steps`` does this).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Literal

SCHEMA_VERSION = 1
Event = Literal["step", "eval", "checkpoint", "resume", "preempted", "done"]
EVENTS: tuple[str, ...] = ("step", "eval", "checkpoint", "resume", "preempted", "done")


@dataclass(frozen=True)
class ProgressLine:
    event: Event
    run_id: str
    resume_idx: int
    step: int
    total_steps: int
    time: float
    elapsed: float
    tokens_seen: int
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    tok_s: float | None = None
    eta: float | None = None
    eval_loss: float | None = None
    path: str | None = None
    size_bytes: int | None = None
    seconds: float | None = None
    reason: str | None = None
    v: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> ProgressLine:
        """Parse one line; unknown keys (from a newer trainer) are ignored."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("event") not in EVENTS:
            raise ValueError(f"not a progress line: {text[:80]!r}")
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def human(self) -> str:
        """The short line printed to stdout next to the JSON record."""
        where = f"step {self.step}/{self.total_steps}"
        if self.event == "step":
            parts = [where, f"loss {_num(self.loss, '.4f')}", f"lr {_num(self.lr, '.2e')}"]
            parts.append(f"gnorm {_num(self.grad_norm, '.3f')}")
            parts.append(f"tok/s {_num(self.tok_s, ',.0f')}")
            parts.append(f"elapsed {_clock(self.elapsed)}")
            parts.append(f"eta {_clock(self.eta)}")
            return "  ".join(parts)
        if self.event == "eval":
            return f"eval  {where}  eval_loss {_num(self.eval_loss, '.4f')}"
        if self.event == "checkpoint":
            size = "?" if self.size_bytes is None else f"{self.size_bytes / 1e6:.2f} MB"
            return f"checkpoint  {where}  {self.path}  {size} in {_num(self.seconds, '.2f')} s"
        if self.event == "resume":
            note = f" ({self.reason})" if self.reason else ""
            return f"resume #{self.resume_idx}  from {where}  {self.path}{note}"
        if self.event == "preempted":
            return f"preempted by {self.reason} at {where}: saving a checkpoint, then exiting"
        return f"done  {where}  loss {_num(self.loss, '.4f')}  output {self.path}"


def _num(value: float | None, spec: str) -> str:
    return "N/A" if value is None else format(value, spec)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "N/A"
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class MetricsWriter:
    """Appends progress lines to a JSONL file (flushed per line) and echoes a human line."""

    def __init__(self, path: str | Path, echo: IO[str] | None = sys.stdout) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._echo = echo

    def write(self, line: ProgressLine) -> None:
        self._file.write(line.to_json() + "\n")
        self._file.flush()
        if self._echo is not None:
            self._echo.write(line.human() + "\n")
            self._echo.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_lines(path: str | Path) -> list[ProgressLine]:
    """All complete progress lines of a file; a torn last line is skipped."""
    lines = []
    with Path(path).open(encoding="utf-8") as handle:
        for raw in handle:
            if not raw.endswith("\n"):
                break
            try:
                lines.append(ProgressLine.from_json(raw))
            except ValueError:
                continue
    return lines


def dedupe_steps(lines: Iterable[ProgressLine]) -> list[ProgressLine]:
    """The step lines of a run as one curve: a resume drops steps repeated after its checkpoint."""
    kept: list[ProgressLine] = []
    for line in lines:
        if line.event == "resume":
            kept = [old for old in kept if old.step <= line.step]
        elif line.event == "step":
            kept.append(line)
    return kept
