"""The Metrics pane: how the training of the job highlighted in the Jobs pane is going.

A job that runs gputui's trainer writes progress lines (``protocol.progress``) that its job folder
links to; the pane reads them from the host (``transfer.telemetry.metrics``) and plots the loss and
the learning rate over the steps, with step/total, tokens/s, the ETA, what finishing will cost at
the host's hourly rate, and which start of the run this is. Lines arrive as the trainer writes them,
but the pane redraws at most every ``REDRAW_S``: a fast trainer, or a long file read at start, costs
a few frames, not one per line.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.widgets import Static
from textual.worker import Worker
from textual_plotext import PlotextPlot

from transfer.errors import GputuiError
from transfer.jobs.events import LogEnded, LogReconnecting, LogResumed
from transfer.jobs.host import HostJobs
from transfer.jobs.state import JobStatus
from transfer.telemetry.cost import JobCost, job_rate
from transfer.telemetry.metrics import MetricsLines, RunMetrics, follow_metrics
from tui import text as fmt
from tui.services.base import services_of
from tui.text import one_line, terminal_safe
from tui.throttle import Throttle
from tui.widgets.pane import Pane

#: The pane redraws at most this often, however fast lines come.
REDRAW_S = 0.5
#: Points plotted per curve at most (the plot is a few hundred cells wide at best).
PLOT_POINTS = 400
TRAINER = "python -m trainers.lora"
LABEL_WIDTH = 5
#: The curves' colours (plotext names) and the same colours for their values above the plot.
LOSS_COLOR, LOSS_STYLE = "cyan", "bold cyan"
LR_COLOR, LR_STYLE = "orange", "bold orange1"


class MetricsPane(Pane):
    """The Metrics pane of a host screen; ``follow(jobs, job)`` shows that job's progress."""

    TITLE = "Metrics"
    PLACEHOLDER = (
        "No metrics to show. Select a job that runs gputui's trainer to plot its loss here."
    )
    can_focus = True

    def __init__(self, host_name: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.host_name = host_name
        self.job: JobStatus | None = None
        self.metrics = RunMetrics()
        self.ended: JobStatus | None = None
        self.note: str | None = None
        self.redraws = 0
        self.reconnects = 0
        self._worker: Worker[None] | None = None
        self._throttle = Throttle(self.set_timer, REDRAW_S, self._redraw)

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Static(id="metrics-stats")
        yield PlotextPlot(id="metrics-plot")

    def on_mount(self) -> None:
        # A new hourly rate changes the cost to finish of a job launched without one.
        services_of(self).hosts_changed.subscribe(self, lambda _: self._changed())
        self._throttle.run()

    # -- following ------------------------------------------------------------------------------
    def follow(self, jobs: HostJobs, job: JobStatus) -> None:
        """Show ``job``'s progress, read from the start of its metrics (the previous job stops)."""
        if self.job is not None and self.job.id == job.id:
            return
        if self._worker is not None:
            self._worker.cancel()
        self.job, self.metrics, self.ended, self.note = job, RunMetrics(), None, None
        self.border_subtitle = escape(one_line(job.name))
        self._changed()
        self._worker = self.run_worker(
            self._follow(jobs, job),
            group=f"live:metrics:{id(self)}",
            exclusive=True,
            exit_on_error=False,
            description=f"Following the metrics of {job.id}",
        )

    async def _follow(self, jobs: HostJobs, job: JobStatus) -> None:
        try:
            async for event in follow_metrics(jobs, job.id):
                if isinstance(event, MetricsLines):
                    self.metrics.add(event)
                elif isinstance(event, LogReconnecting):
                    self.reconnects += 1
                    self.note = terminal_safe(
                        f"link lost ({event.reason}); reconnecting, attempt {event.attempt}"
                    )
                elif isinstance(event, LogResumed):
                    self.note = None
                elif isinstance(event, LogEnded):
                    self.ended = event.status or job
                self._changed()
        except GputuiError as exc:
            self.note = terminal_safe(f"cannot read the metrics: {exc}")
            self._changed()

    def rate(self) -> float:
        """The job's rate: the one recorded at launch (``transfer.telemetry.cost``)."""
        host = services_of(self).host_named(self.host_name)
        host_rate = host.rate_usd_per_hour if host is not None else 0.0
        return job_rate(self.job.meta.rate_usd_per_hour if self.job else 0.0, host_rate)

    # -- drawing (throttled) ----------------------------------------------------------------------
    def _changed(self) -> None:
        """Redraw now if the last frame is old enough, else once when it is."""
        if self.is_mounted:
            self._throttle.request()

    def _redraw(self) -> None:
        self.redraws += 1
        has_data = self.metrics.has_data
        try:
            placeholder = self.query_one(".pane-placeholder", Static)
            stats = self.query_one("#metrics-stats", Static)
            plot = self.query_one("#metrics-plot", PlotextPlot)
        except NoMatches:
            return  # the pane is being removed and its children are already gone
        self.set_class(has_data, "-has-metrics")
        if not has_data:
            placeholder.update(self.placeholder_text())
            return
        stats.update(stats_table(self.metrics, self.rate(), self.ended, self.note))
        self._plot(plot)

    def placeholder_text(self) -> Text:
        job = self.job
        if job is None:
            return Text(self.PLACEHOLDER)
        if self.note:
            return Text(self.note, style="yellow")
        name = one_line(job.name)
        if self.ended is not None or not job.state.is_active:
            return Text(
                f"{name} wrote no metrics. Jobs that run gputui's trainer ({TRAINER}) "
                "write progress lines; other commands have none."
            )
        return Text(
            f"No progress lines from {name} yet. Jobs that run gputui's trainer ({TRAINER}) "
            "write them as they train; other commands have none."
        )

    def _plot(self, plot: PlotextPlot) -> None:
        curve = self.metrics.curve(PLOT_POINTS)
        plt = plot.plt
        plt.clear_data()
        # No legend (it would hide the first steps): the axis labels and the colours of the
        # values above say which curve is which.
        if curve.loss:
            plt.plot(curve.loss_steps, curve.loss, color=LOSS_COLOR, marker="braille")
        if curve.lr:
            plt.plot(curve.lr_steps, curve.lr, color=LR_COLOR, marker="braille", yside="right")
        plt.xlabel("step")
        # plotext's ylabel takes yside at run time; its stub names the argument xside.
        plt.ylabel("loss", yside="left")  # type: ignore[call-arg]
        plt.ylabel("lr", yside="right")  # type: ignore[call-arg]
        total = self.metrics.total_steps
        if total:
            plt.xlim(0, total)
        plot.refresh()


def stats_table(
    metrics: RunMetrics, rate: float, ended: JobStatus | None, note: str | None
) -> RenderableType:
    """Label and value in two pairs of columns, then the long values on lines of their own: the
    cost to finish, and a reconnect in progress."""
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(no_wrap=True, style="dim", width=LABEL_WIDTH)
    grid.add_column(no_wrap=True, min_width=14)  # short values: the right pair gets the room
    grid.add_column(no_wrap=True, style="dim", width=LABEL_WIDTH)
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    rows: list[tuple[str, RenderableType, str, RenderableType]] = [
        ("Step", step_text(metrics), "Loss", loss_text(metrics)),
        ("Tok/s", fmt.na(metrics.tok_s, "", ",.0f"), "LR",
         Text(fmt.na(metrics.lr, "", ".2e"), style=LR_STYLE)),
        ("ETA", eta_text(metrics), "Run", run_text(metrics, ended)),
    ]
    for label, value, label2, value2 in rows:
        grid.add_row(label, value, label2, value2)
    lines = Table.grid(padding=(0, 1), expand=True)
    lines.add_column(no_wrap=True, style="dim", width=LABEL_WIDTH)
    lines.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    lines.add_row("Cost", cost_text(metrics.cost(rate), rate))
    if note:
        lines.add_row("Link", Text(note, style="yellow"))
    return Group(grid, lines)


def step_text(metrics: RunMetrics) -> Text:
    step, total, fraction = metrics.step, metrics.total_steps, metrics.fraction
    text = Text(f"{fmt.na(step)}/{fmt.na(total)}", style="bold")
    if fraction is not None:
        text.append(f" {fraction * 100:.0f}%", style="dim")
    return text


def loss_text(metrics: RunMetrics) -> Text:
    text = Text(fmt.na(metrics.loss, "", ".4f"), style=LOSS_STYLE)
    evaluated = metrics.last_eval
    if evaluated is not None and evaluated.eval_loss is not None:
        text.append(f" eval {evaluated.eval_loss:.4f}", style="dim")
    return text


def eta_text(metrics: RunMetrics) -> str:
    if metrics.finished:
        return "done"
    eta = metrics.eta_s
    if eta is None:
        return fmt.NA
    return fmt.duration(eta) + (" (paused)" if metrics.preempted else "")


def cost_text(cost: JobCost, rate: float) -> Text:
    """What finishing costs (rate × ETA), and the whole run with the training time so far."""
    if not rate:
        return Text("N/A to finish (no hourly rate for this host)", style="dim")
    text = Text(fmt.usd(cost.to_finish), style="bold")
    text.append(" to finish", style="dim")
    if cost.projected_total is not None:
        text.append(f" · {fmt.usd(cost.projected_total)} in all", style="dim")
    text.append(f" · ${rate:.2f}/h", style="dim")
    return text


def run_text(metrics: RunMetrics, ended: JobStatus | None) -> Text:
    """What the run is doing, and which start of it this is (the resume index)."""
    text = state_text(metrics, ended)
    index = metrics.resume_idx
    if index is not None:
        text.append(" · first start" if index == 0 else f" · resume #{index}", style="dim")
    return text


def state_text(metrics: RunMetrics, ended: JobStatus | None) -> Text:
    latest = metrics.latest
    if latest is None:
        return Text(fmt.NA)
    if latest.event == "done":
        return Text("done", style="bold green")
    if latest.event == "preempted":
        return Text(f"preempted ({one_line(latest.reason or 'signal')})", style="magenta")
    if ended is not None:
        return Text(f"job {ended.state_text}", style="red")
    if latest.event == "resume":
        return Text(f"resumed at step {latest.step}", style="yellow")
    return Text("training", style="green")
