"""Progress lines: the JSON contract, the human echo, per-line flushing and de-duplication."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from trainers.protocol.progress import MetricsWriter, ProgressLine, dedupe_steps, read_lines


def line(event: str, step: int, **values: Any) -> ProgressLine:
    return ProgressLine(
        event=event,  # type: ignore[arg-type]
        run_id="abc",
        resume_idx=values.pop("resume_idx", 0),
        step=step,
        total_steps=100,
        time=1.0,
        elapsed=3725.0,
        tokens_seen=step * 10,
        **values,
    )


def test_json_round_trip_and_required_keys() -> None:
    original = line("step", 3, loss=2.5, lr=1e-3, grad_norm=0.25, tok_s=1500.0, eta=90.0)
    record = json.loads(original.to_json())
    for key in (
        "event",
        "run_id",
        "resume_idx",
        "step",
        "loss",
        "lr",
        "grad_norm",
        "tokens_seen",
        "tok_s",
        "elapsed",
        "eta",
        "total_steps",
        "v",
    ):
        assert key in record
    assert ProgressLine.from_json(original.to_json()) == original


def test_newer_keys_are_ignored_and_garbage_refused() -> None:
    record = json.loads(line("eval", 5, eval_loss=1.5).to_json())
    record["added_later"] = 1
    assert ProgressLine.from_json(json.dumps(record)).eval_loss == 1.5
    with pytest.raises(ValueError):
        ProgressLine.from_json('{"event": "nonsense"}')


def test_human_lines() -> None:
    assert line("step", 3, loss=2.5, lr=1e-3, grad_norm=0.25, tok_s=1500.0, eta=90.0).human() == (
        "step 3/100  loss 2.5000  lr 1.00e-03  gnorm 0.250  tok/s 1,500  "
        "elapsed 1:02:05  eta 0:01:30"
    )
    assert "N/A" in line("step", 1).human()
    assert line("preempted", 7, reason="SIGTERM").human().startswith("preempted by SIGTERM")
    checkpoint = line("checkpoint", 8, path="ck/step-8", size_bytes=2_500_000, seconds=0.5)
    assert checkpoint.human() == "checkpoint  step 8/100  ck/step-8  2.50 MB in 0.50 s"


def test_writer_flushes_every_line(tmp_path: Path) -> None:
    echo = io.StringIO()
    path = tmp_path / "m" / "metrics.jsonl"
    with MetricsWriter(path, echo=echo) as writer:
        writer.write(line("step", 1, loss=1.0))
        assert len(path.read_text().splitlines()) == 1  # readable before close
        writer.write(line("done", 1, loss=1.0, path="out"))
        assert len(path.read_text().splitlines()) == 2
    assert echo.getvalue().splitlines()[1].startswith("done  step 1/100")


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(line("step", 1).to_json() + "\n" + line("step", 2).to_json()[:20])
    assert [item.step for item in read_lines(path)] == [1]


def test_dedupe_drops_steps_repeated_after_resume() -> None:
    lines = [line("step", step, loss=float(step)) for step in (1, 2, 3, 4)]
    lines.append(line("resume", 2, resume_idx=1))
    lines += [line("step", step, loss=step + 0.5, resume_idx=1) for step in (3, 4, 5)]
    curve = dedupe_steps(lines)
    assert [(item.step, item.loss) for item in curve] == [
        (1, 1.0),
        (2, 2.0),
        (3, 3.5),
        (4, 4.5),
        (5, 5.5),
    ]
