"""The fleet columns of the host list: live GPUs, mean utilization, the idle flag, cost so far.

They are added to the host table beside its own columns and filled from the app's telemetry.
A DataTable redraws every visible cell when any cell changes, so the hosts whose telemetry moved
are collected and written together once per ``REFRESH_S`` (one redraw a second for the whole
fleet, not one per sample), and a cell whose text did not change is left alone. Until a host has
sent a sample its cells read ``—``, the same as a host that is not watched, so the list does not
flicker while connecting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from transfer.telemetry.fleet import HostTelemetry
from tui import gauges
from tui import text as fmt
from tui.host_status import UNKNOWN

#: key, label, width
FLEET_COLUMNS = (
    ("util", "Util", 9),
    ("idle", "Idle", 14),
    ("cost", "Cost", 8),
)
GPUS_COLUMN = "gpus"
REFRESH_S = 1.0


class StatesLike(Protocol):
    """Anything with ``state(name)`` and ``clock`` (the app's FleetTelemetry)."""

    clock: Callable[[], float]

    def state(self, name: str) -> HostTelemetry | None: ...


def ensure_columns(table: DataTable[Any]) -> None:
    for key, label, width in FLEET_COLUMNS:
        if ColumnKey(key) not in table.columns:
            table.add_column(label, key=key, width=width)


def cells(state: HostTelemetry | None, now: float) -> dict[str, Text]:
    """The fleet cells of one host."""
    dash = Text(UNKNOWN, style="dim")
    if state is None or state.last is None:
        return {"util": dash, "idle": dash, "cost": dash}
    mean = state.mean_utilization()
    if mean is None:
        util = Text(UNKNOWN, style="dim")
    elif state.is_stale:
        util = Text(f"{mean:.0f}% ⚠{fmt.duration(state.age(now) or 0)}", style="yellow")
    else:
        util = Text(f"{mean:.0f}%", style=gauges.level_style(mean))
    if state.idle_flagged:
        spent = state.idle_cost()
        idle = Text(f"IDLE {fmt.duration(state.idle.idle_for)}", style="bold yellow")
        if spent is not None:
            idle.append(f" {fmt.usd(spent)}")
    else:
        idle = Text(UNKNOWN, style="dim")
    cost = state.cost_so_far(now)
    return {
        "util": util,
        "idle": idle,
        "cost": Text(fmt.usd(cost), justify="right") if cost is not None else dash,
    }


def fill_row(table: DataTable[Any], name: str, telemetry: StatesLike) -> None:
    """Update one host's fleet cells, when its row is shown."""
    row = RowKey(name)
    if row not in table.rows:
        return
    ensure_columns(table)
    state = telemetry.state(name)
    values: dict[str, Text | str] = dict(cells(state, telemetry.clock()))
    if state is not None and state.last is not None and state.last.gpus:
        values[GPUS_COLUMN] = Text(gauges.gpu_summary(state.last.gpus))
    for key, value in values.items():
        if not _same(table.get_cell(row, key), value):
            table.update_cell(row, key, value)


def _same(old: object, new: Text | str) -> bool:
    if isinstance(old, Text) and isinstance(new, Text):
        return old.plain == new.plain and old.style == new.style and old.spans == new.spans
    return old == new


def fill(table: DataTable[Any], telemetry: StatesLike) -> None:
    """Update every shown row (after the table was refilled)."""
    ensure_columns(table)
    for row in list(table.rows):
        fill_row(table, str(row.value), telemetry)


class FleetRefresh:
    """The hosts whose telemetry changed since the last redraw of the list."""

    def __init__(self, table: DataTable[Any], telemetry: StatesLike) -> None:
        self.table = table
        self.telemetry = telemetry
        self.changed: set[str] = set()

    def mark(self, name: str) -> None:
        self.changed.add(name)

    def flush(self) -> None:
        changed, self.changed = self.changed, set()
        for name in sorted(changed):
            fill_row(self.table, name, self.telemetry)
