"""Progress lines a host may send that the trainer never writes: each is skipped, none crashes.

The host writes ``metrics.jsonl``; a string where a count goes, an infinite ETA, a step that is
NaN or too big for a float must not reach the curve or the pane (bytes that are not UTF-8, and a
NaN loss, which a diverging run does write, are in tests/tui/test_metrics_pane.py).
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pytest
from progress_lines import step_line
from rich.console import Console

from transfer.telemetry.metrics import RunMetrics, parse_lines
from tui.widgets.metrics_pane import stats_table

GOOD = json.loads(step_line(1, 10).to_json())


def line_with(**values: Any) -> str:
    """The good step line with ``values`` in place (NaN and inf as JSON's NaN, Infinity)."""
    return json.dumps({**GOOD, **values})


BAD_LINES = {
    "string step": line_with(step="2"),
    "string loss": line_with(loss="1.5"),
    "inf time": line_with(time=math.inf),
    "nan eta": line_with(eta=math.nan),
    "inf eta": line_with(eta=math.inf),
    "nan step": line_with(step=math.nan),
    "float step": line_with(step=2.5),
    "negative step": line_with(step=-1),
    "list total": line_with(total_steps=[10]),
    "huge step": line_with(step=10**400),
    "huge elapsed": line_with(elapsed=10**400),
    "huge loss": line_with(loss=10**400),
    "bool resume": line_with(resume_idx=True),
    "number reason": line_with(event="preempted", reason=5),
    "missing run id": line_with(run_id=None),
    "deep nesting": "[" * 100_000,
}


def shown(metrics: RunMetrics) -> str:
    """What the Metrics pane's stats show for ``metrics``, as text."""
    console = Console(file=io.StringIO(), width=120)
    console.print(stats_table(metrics, 2.0, None, None))
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_line_with_a_bad_value_is_skipped(bad: str) -> None:
    lines, skipped = parse_lines([json.dumps(GOOD), bad, step_line(2, 10).to_json()])
    assert [line.step for line in lines] == [1, 2] and skipped == 1
    metrics = RunMetrics()
    metrics.feed(lines)
    assert "2/10 20%" in shown(metrics)
    assert metrics.curve(100).loss_steps == [1, 2]
