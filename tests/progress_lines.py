"""Progress lines of a made-up training run, and a job that writes them the way the trainer does.

The job runs a small script through the trainer's own ``MetricsWriter`` (flushed per line, the
human echo on stdout) into a run folder, and links the job folder to it (``METRICS_LINK``) as the
trainer does when ``GPUTUI_JOB_DIR`` is set. It can hold after a given line until a file
appears, so a test can look at a run mid-way, then let it finish.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from trainers.protocol.progress import ProgressLine

RATE_USD_PER_HOUR = 2.0
SECONDS_PER_STEP = 3.0


def progress(event: str, step: int, total: int, **values: Any) -> ProgressLine:
    """One line of run ``r1`` at ``step`` of ``total``; steps take three seconds each."""
    values.setdefault("resume_idx", 0)
    return ProgressLine(
        event=event,  # type: ignore[arg-type]
        run_id="r1",
        step=step,
        total_steps=total,
        time=1_700_000_000.0 + step * SECONDS_PER_STEP,
        elapsed=step * SECONDS_PER_STEP,
        tokens_seen=step * 512,
        **values,
    )


def step_line(step: int, total: int, resume_idx: int = 0) -> ProgressLine:
    """A step whose loss falls from 4 and whose lr decays linearly from 1e-3."""
    return progress(
        "step",
        step,
        total,
        resume_idx=resume_idx,
        loss=4.0 / (1 + step / 10),
        lr=1e-3 * (1 - step / total),
        grad_norm=0.5,
        tok_s=1234.0 + resume_idx,
        eta=(total - step) * SECONDS_PER_STEP,
    )


def training_run(total: int) -> list[ProgressLine]:
    """Steps 1..total, an eval and a checkpoint half-way, and ``done``."""
    lines: list[ProgressLine] = []
    for step in range(1, total + 1):
        lines.append(step_line(step, total))
        if step == total // 2:
            lines.append(progress("eval", step, total, eval_loss=1.5))
            lines.append(progress("checkpoint", step, total, path="ckpt", size_bytes=10,
                                  seconds=0.1))
    lines.append(progress("done", total, total, loss=lines[-1].loss, path="adapter"))
    return lines


def preempted_and_resumed(total: int, checkpoint: int, preempted_at: int) -> list[ProgressLine]:
    """A run that saved at ``checkpoint``, ran on to ``preempted_at``, was stopped, resumed from
    the checkpoint (repeating the steps after it) and is now mid-way again."""
    lines = [step_line(s, total) for s in range(1, checkpoint + 1)]
    lines.append(progress("checkpoint", checkpoint, total, path="ckpt"))
    lines += [step_line(s, total) for s in range(checkpoint + 1, preempted_at + 1)]
    lines.append(progress("preempted", preempted_at, total, reason="SIGTERM"))
    lines.append(progress("resume", checkpoint, total, resume_idx=1, path="ckpt"))
    lines += [step_line(s, total, resume_idx=1) for s in range(checkpoint + 1, preempted_at + 3)]
    return lines


WRITER = """
import os, sys, time
from pathlib import Path
from trainers.protocol.jobdir import METRICS_LINK
from trainers.protocol.progress import MetricsWriter, ProgressLine

source, run, hold_after, go, pause = sys.argv[1:6]
run = Path(run)
run.mkdir(parents=True, exist_ok=True)
target = run / "metrics.jsonl"
target.touch()
os.symlink(target, Path(os.environ["GPUTUI_JOB_DIR"]) / METRICS_LINK)
with MetricsWriter(target) as writer:
    for number, text in enumerate(Path(source).read_text().splitlines(), 1):
        writer.write(ProgressLine.from_json(text))
        time.sleep(float(pause))
        if number == int(hold_after):
            deadline = time.monotonic() + 60
            while not Path(go).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
"""


def writer_job(
    folder: Path,
    lines: list[ProgressLine],
    *,
    hold_after: int = 0,
    pause_s: float = 0.02,
) -> tuple[str, Path]:
    """The command of a job that writes ``lines`` (holding after line ``hold_after`` until the
    returned file exists), and that file."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "source.jsonl"
    source.write_text("".join(line.to_json() + "\n" for line in lines), encoding="utf-8")
    script = folder / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    go = folder / "go"
    argv = [sys.executable, str(script), str(source), str(folder / "run"), str(hold_after),
            str(go), str(pause_s)]
    return " ".join(shlex.quote(a) for a in argv), go
