"""The GPU panel of a host: a card per GPU, the host around them, what it costs, the processes.

Each card shows utilization and memory as bars with the last few minutes as sparklines, then
temperature, power, fan and SM clock; a missing reading is N/A. When the host goes quiet the last
good values stay on screen, dimmed, with their age. The panel redraws when its host's telemetry
changes (``FleetTelemetry.changed``), so other hosts' samples cost it nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import DataTable, Static

from trainers.protocol.gpu_sample import GpuSample, HostSample
from transfer.telemetry.fleet import HostTelemetry
from transfer.telemetry.history import GpuHistory
from tui import gauges
from tui import text as fmt
from tui.services.base import services_of
from tui.services.telemetry import FleetTelemetry
from tui.text import one_line, terminal_safe
from tui.widgets.pane import Pane

LABEL_WIDTH = 4
VALUE_WIDTH = 12
SPARK_MAX = 30
PROCESS_COLUMNS = (
    ("gpu", "GPU"),
    ("pid", "PID"),
    ("user", "User"),
    ("memory", "GPU mem"),
    ("command", "Command"),
)


class GpuCard(Widget):
    """One GPU in three lines; drawn at the width it is given."""

    def __init__(self, index: int) -> None:
        super().__init__(classes="gpu-card")
        self.index = index
        self.gpu: GpuSample | None = None
        self.history: GpuHistory | None = None
        self.now = 0.0

    def show(self, gpu: GpuSample, history: GpuHistory, now: float, stale: bool) -> None:
        self.gpu, self.history, self.now = gpu, history, now
        self.set_class(stale, "-stale")
        self.refresh()

    def render(self) -> RenderableType:
        if self.gpu is None:
            return Text("")
        return card_text(self.gpu, self.history, self.now, self.size.width)


def card_text(gpu: GpuSample, history: GpuHistory | None, now: float, width: int) -> Text:
    """The three lines of a GPU card at ``width`` cells."""
    width = max(width, 30)
    spark = min(SPARK_MAX, width // 3) if width >= 48 else 0
    bar_width = width - LABEL_WIDTH - VALUE_WIDTH - (spark + 1 if spark else 0)

    facts = Text()
    facts.append(fmt.na(gpu.temperature_c, "°C"), style=gauges.temperature_style(gpu.temperature_c))
    power = f"{fmt.na(gpu.power_draw_w, '', '.0f')}/{fmt.na(gpu.power_limit_w, ' W', '.0f')}"
    facts.append(f"  {power}")
    facts.append(f"  fan {fmt.na(gpu.fan_pct, '%')}  {fmt.na(gpu.sm_clock_mhz, ' MHz')}")
    title = Text(f"GPU {gpu.index} ", style="bold")
    room = max(0, width - len(title) - len(facts) - 1)
    title.append(fmt.short_name(gpu.name)[:room])
    title.append(" " * max(1, width - len(title) - len(facts)))
    title.append_text(facts)

    memory_pct = None
    if gpu.memory_used_mib is not None and gpu.memory_total_mib:
        memory_pct = 100.0 * gpu.memory_used_mib / gpu.memory_total_mib
    util = _meter(
        "UTL", gpu.utilization_pct, fmt.na(gpu.utilization_pct, "%"), bar_width, "green"
    )
    memory = _meter(
        "MEM",
        memory_pct,
        f"{fmt.gib(gpu.memory_used_mib)}/{fmt.gib(gpu.memory_total_mib)}G",
        bar_width,
        gauges.level_style(memory_pct),
    )
    if spark and history is not None:
        utilization = history.resampled(gpu.index, "utilization_pct", spark, now)
        util.append(" ").append_text(gauges.sparkline(utilization, 100, "green"))
        memory.append(" ").append_text(
            gauges.sparkline(history.resampled(gpu.index, "memory_pct", spark, now), 100, "cyan")
        )
    return Text("\n").join([title, util, memory])


def _meter(label: str, percent: float | None, value: str, width: int, style: str) -> Text:
    line = Text(f"{label} ", style="bold")
    line.append_text(gauges.bar(percent, width, style))
    line.append(f" {value}".rjust(VALUE_WIDTH)[:VALUE_WIDTH])
    return line


def status_text(state: HostTelemetry | None, name: str, now: float) -> Text:
    """Where the numbers come from and how old they are; why there are none."""
    if state is None or (state.last is None and state.error is None):
        return Text(f"Connecting to {name}…", style="italic")
    if state.last is None:
        style = "bold red" if state.fatal else "yellow"
        return Text(("✗ " if state.fatal else "… ") + (state.error or ""), style=style)
    sample = state.last
    line = Text()
    if state.is_stale:
        line.append(
            f"⚠ stale: last sample {fmt.duration(state.age(now) or 0)} ago — {state.stale_reason}",
            style="bold yellow",
        )
        return line
    parts = [terminal_safe(sample.source)]
    if sample.driver_version:
        parts.append(f"driver {terminal_safe(sample.driver_version)}")
    if sample.hostname:
        parts.append(terminal_safe(sample.hostname))
    parts.append(f"updated {fmt.duration(state.age(now) or 0)} ago")
    line.append(" · ".join(parts), style="dim")
    if state.error:
        line.append(f"  ({terminal_safe(state.error)})", style="yellow")
    return line


def host_text(sample: HostSample) -> Text:
    h = sample.host
    parts = [
        f"CPU {fmt.na(h.cpu_pct, '%', '.0f')} ×{fmt.na(h.cpu_count)}",
        f"load {fmt.na(h.load_1, '', '.2f')}",
        f"RAM {fmt.size(h.ram_used_mib)}/{fmt.size(h.ram_total_mib)}",
        f"disk {fmt.size(h.disk_free_mib)} free",
        f"net ↓{fmt.rate(h.net_rx_bps)} ↑{fmt.rate(h.net_tx_bps)}",
    ]
    return Text(" · ".join(parts))


def cost_text(state: HostTelemetry, now: float) -> Text:
    """Rate, cost so far, the idle flag with the money spent idle, and the running jobs."""
    line = Text()
    if not state.rate_usd_per_hour:
        line.append("no hourly rate set (edit the host to add one)", style="dim")
    else:
        line.append(f"${state.rate_usd_per_hour:.2f}/h", style="bold")
        so_far = state.cost_so_far(now)
        if so_far is not None and state.first_seen_up is not None:
            up_for = (state.received_at if state.is_stale and state.received_at else now)
            up = fmt.duration(up_for - state.first_seen_up)
            line.append(f" · {fmt.usd(so_far)} so far (up {up})")
    if state.idle_flagged:
        spent = state.idle_cost()
        money = f" ({fmt.usd(spent)})" if spent is not None else ""
        line.append(f" · IDLE {fmt.duration(state.idle.idle_for)}{money}", style="bold yellow")
    running = state.running_jobs
    if running is None:
        line.append(" · jobs: N/A", style="dim")
    elif running:
        costs = []
        for job in running:
            cost = state.job_cost(job).so_far
            costs.append(one_line(job.name, 32) + (f" {fmt.usd(cost)}" if cost is not None else ""))
        line.append(f" · running: {', '.join(costs)}")
    else:
        line.append(" · no job running", style="dim")
    return line


def process_rows(sample: HostSample) -> list[tuple[str | Text, ...]]:
    """One row per GPU process; host-sent user and command names as plain, escaped text."""
    rows: list[tuple[str | Text, ...]] = []
    for gpu in sample.gpus:
        for process in gpu.processes:
            rows.append(
                (
                    str(gpu.index),
                    str(process.pid),
                    Text(terminal_safe(process.user or fmt.NA)),
                    fmt.na(process.gpu_memory_mib, " MiB"),
                    Text(terminal_safe(process.command or fmt.NA)),
                )
            )
    return rows


class GpuPanel(Pane):
    """The GPU pane of one host's screen."""

    TITLE = "GPU"

    def __init__(
        self,
        host_name: str,
        *,
        telemetry: FleetTelemetry | None = None,
        clock: Callable[[], float] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.host_name = host_name
        self._telemetry = telemetry
        self._clock = clock
        self._processes: list[tuple[str | Text, ...]] | None = None

    @property
    def telemetry(self) -> FleetTelemetry:
        if self._telemetry is None:
            self._telemetry = services_of(self).telemetry
        return self._telemetry

    def now(self) -> float:
        return (self._clock or self.telemetry.clock)()

    def compose(self) -> ComposeResult:
        yield Static(id="gpu-status")
        yield VerticalScroll(id="gpu-cards")
        yield Static(id="gpu-host")
        yield Static(id="gpu-cost")
        table: DataTable[Any] = DataTable(id="gpu-processes", cursor_type="none", show_cursor=False)
        yield table

    def on_mount(self) -> None:
        table = self.query_one("#gpu-processes", DataTable)
        for key, label in PROCESS_COLUMNS:
            table.add_column(label, key=key)
        self.telemetry.changed.subscribe(self, self._changed)
        host = services_of(self).host_named(self.host_name)
        if host is not None:
            self.telemetry.watch(host)
        self.show(self.telemetry.state(self.host_name))

    def _changed(self, name: str) -> None:
        if name != self.host_name or not self.is_attached:
            return
        try:
            self.show(self.telemetry.state(name))
        except NoMatches:
            return  # the panel is being removed and its children are already gone

    def show(self, state: HostTelemetry | None) -> None:
        """Draw ``state``: the last good sample (dimmed and aged when stale), or why none."""
        now = self.now()
        self.query_one("#gpu-status", Static).update(status_text(state, self.host_name, now))
        sample = state.last if state is not None else None
        self.set_class(state is not None and state.is_stale, "-stale")
        host_line = self.query_one("#gpu-host", Static)
        cost_line = self.query_one("#gpu-cost", Static)
        if state is None or sample is None:
            self._show_cards([], None, now, False)
            host_line.update("")
            cost_line.update(cost_text(state, now) if state is not None else "")
            self._show_processes([])
            return
        self._show_cards(sample.gpus, state.history, now, state.is_stale)
        if not sample.gpus:
            cards = self.query_one("#gpu-cards", VerticalScroll)
            note = cards.query(".gpu-none")
            text = Text(f"No GPUs: {terminal_safe(sample.gpu_status)}")
            if note:
                cast(Static, note.first()).update(text)
            else:
                cards.mount(Static(text, classes="gpu-none"))
        host_line.update(host_text(sample))
        cost_line.update(cost_text(state, now))
        self._show_processes(process_rows(sample))

    def _show_cards(
        self, gpus: list[GpuSample], history: GpuHistory | None, now: float, stale: bool
    ) -> None:
        cards_box = self.query_one("#gpu-cards", VerticalScroll)
        if gpus:
            cards_box.query(".gpu-none").remove()
        cards = list(cards_box.query(GpuCard))
        wanted = [gpu.index for gpu in gpus]
        if [card.index for card in cards] != wanted:
            for card in cards:
                card.remove()
            cards = [GpuCard(index) for index in wanted]
            if cards:
                cards_box.mount_all(cards)
        for card, gpu in zip(cards, gpus, strict=True):
            card.show(gpu, history or GpuHistory(), now, stale)

    def _show_processes(self, rows: list[tuple[str | Text, ...]]) -> None:
        if rows == self._processes:
            return
        self._processes = rows
        table = self.query_one("#gpu-processes", DataTable)
        table.clear()
        for row in rows:
            table.add_row(*row)
        table.display = bool(rows)
