"""Uploads and downloads between this machine and the host: one block per transfer, with a
bar for the whole transfer and one for the file moving now, bytes, rate, ETA and state.

The transfers themselves belong to the app (``app.transfers``, ``tui.services.transfers``): leaving
the screen does not stop them, and coming back shows where they stand. ``p`` pushes this folder to
the host's workdir and ``P`` pulls a path from the host (asked for), from anywhere on the host
screen; with the pane focused, ``j``/``k`` select a transfer, ``c`` cancels and ``r`` resumes it.
"""

from __future__ import annotations

import os
import posixpath
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import Static

from transfer.hosts import HostProfile
from transfer.sync.engine import SyncRequest
from tui.actions import ActionSpec
from tui.services.base import services_of
from tui.services.transfers import TransferRecord
from tui.text import human_bytes, human_eta, terminal_safe
from tui.widgets.pane import Pane

# The host screen binds these (so they work wherever the focus is on it) and lists them in
# its footer, help and palette. Cancel and resume act on the selected transfer, so they are
# the pane's own keys, live while it has the focus.
TRANSFER_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("transfers.push", "p", "push", "Push", "Push this folder",
               "Send the current folder to the host's workdir (only what changed)"),
    ActionSpec("transfers.pull", "P", "pull", "Pull", "Pull from the host",
               "Fetch a file or folder from the host (asks for its path)"),
)

STATE_STYLES = {
    "running": "yellow",
    "done": "green",
    "failed": "bold red",
    "cancelled": "magenta",
}


def shorten(path: str, limit: int = 40) -> str:
    home = os.path.expanduser("~")
    if path == home or path.startswith(home + "/"):
        path = "~" + path[len(home) :]
    shown = terminal_safe(path)  # names come from the host: control characters escaped
    return shown if len(shown) <= limit else "…" + shown[-(limit - 1) :]


def _bar(done: int, total: int) -> ProgressBar:
    return ProgressBar(total=max(total, 1), completed=min(done, max(total, 1)))


def render_transfer(record: TransferRecord, *, selected: bool) -> RenderableType:
    """What goes where and its state; the whole transfer (bar, then bytes, rate, ETA and
    files); the file moving now with its own bar."""
    request = record.request
    pushing = request.direction == "push"
    local, remote = shorten(request.local), f"{record.host.name}:{shorten(request.remote)}"
    route = f"{local} → {remote}" if pushing else f"{remote} → {local}"
    head = Table.grid(expand=True)
    head.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    head.add_column(no_wrap=True, justify="right")
    title = Text("↑ push  " if pushing else "↓ pull  ", style="bold")
    title.append(route)
    if selected:
        title.stylize("reverse")
    state = record.phase if record.state == "running" else record.state
    head.add_row(title, Text(f" {state}", style=STATE_STYLES[record.state]))
    lines: list[RenderableType] = [head]

    progress = record.progress
    if progress is not None and record.state in ("running", "cancelled", "failed"):
        total = Table.grid(expand=True, padding=(0, 1))
        total.add_column(ratio=1)
        total.add_column(no_wrap=True, justify="right", width=4)
        percent = 100 * progress.bytes_done / progress.bytes_total if progress.bytes_total else 0
        total.add_row(_bar(progress.bytes_done, progress.bytes_total), f"{percent:.0f}%")
        lines.append(total)
        lines.append(
            Text(
                f"{human_bytes(progress.bytes_done)}/{human_bytes(progress.bytes_total)} · "
                f"{human_bytes(progress.rate)}/s · {human_eta(progress.eta_s)} · "
                f"{progress.files_done}/{progress.files_total} files",
                no_wrap=True,
                overflow="ellipsis",
            )
        )
        current = progress.current
        if current is not None and record.state == "running":
            file_line = Table.grid(expand=True, padding=(0, 1))
            file_line.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
            file_line.add_column(width=12)
            file_line.add_column(no_wrap=True)
            file_line.add_row(
                Text(shorten(current.name, 60), style="dim"),
                _bar(current.done, current.size),
                f"{human_bytes(current.done)}/{human_bytes(current.size)}",
            )
            lines.append(file_line)
    if record.note and record.state == "running":
        lines.append(Text(record.note, style="yellow"))
    if record.state == "done" and record.result is not None:
        lines.append(Text(_summary(record), style="dim"))
    if record.error and record.state == "failed":
        lines.append(Text(record.error, style="red"))
    if record.state == "cancelled":
        lines.append(Text("stopped; r resumes it", style="dim"))
    return Group(*lines)


def _summary(record: TransferRecord) -> str:
    result = record.result
    assert result is not None
    parts = [
        f"{result.files_sent} files ({human_bytes(result.bytes_sent)}) in {result.elapsed_s:.1f} s",
        f"{result.files_skipped} unchanged",
    ]
    if result.resumed_bytes:
        parts.append(f"resumed {human_bytes(result.resumed_bytes)}")
    if result.deleted:
        parts.append(f"deleted {result.deleted}")
    if result.hash_name:
        parts.append(f"verified {result.verified}")
    return "; ".join(parts)


class TransfersPane(Pane):
    """The Transfers pane of a host screen."""

    TITLE = "Transfers"
    PLACEHOLDER = "No transfers yet. Pushes and pulls to this host show their progress here."
    can_focus = True

    BINDINGS: ClassVar = [
        Binding("c", "cancel_transfer", "Cancel", id="transfers.cancel",
                tooltip="Stop the selected transfer; r runs it again from where it stopped"),
        Binding("r", "resume_transfer", "Resume", id="transfers.resume",
                tooltip="Run the selected stopped or failed transfer again, from where it stopped"),
        Binding("j,down", "select(1)", "Next transfer", show=False, id="transfers.down"),
        Binding("k,up", "select(-1)", "Previous transfer", show=False, id="transfers.up"),
    ]

    def __init__(self, host_name: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.host_name = host_name
        self.selected = 0

    def compose(self) -> ComposeResult:
        yield Static(self.PLACEHOLDER, classes="pane-placeholder", id="transfers-body")

    def on_mount(self) -> None:
        if self.host_name:
            services_of(self).transfers.changed.subscribe(self, self._changed)
            self.redraw()

    def _changed(self, host_name: str) -> None:
        if host_name == self.host_name:
            self.redraw()

    # -- reading -----------------------------------------------------------------------------
    @property
    def records(self) -> list[TransferRecord]:
        return services_of(self).transfers.for_host(self.host_name)

    def selected_record(self) -> TransferRecord | None:
        records = self.records
        if not records:
            return None
        self.selected = min(max(self.selected, 0), len(records) - 1)
        return records[self.selected]

    def redraw(self) -> None:
        records = self.records
        try:
            body = self.query_one("#transfers-body", Static)
        except NoMatches:  # not composed yet, or being removed with its screen
            return
        if not records:
            body.set_class(True, "pane-placeholder")
            body.update(self.PLACEHOLDER)
            self.border_subtitle = ""
            return
        self.selected = min(self.selected, len(records) - 1)
        body.set_class(False, "pane-placeholder")
        blocks: list[RenderableType] = []
        for index, record in enumerate(records):
            if index:
                blocks.append(Text(""))
            blocks.append(render_transfer(record, selected=index == self.selected))
        body.update(Group(*blocks))
        running = sum(1 for r in records if r.active)
        self.border_subtitle = f"{running} running" if running else f"{len(records)} done"

    # -- actions -----------------------------------------------------------------------------
    def action_select(self, step: int) -> None:
        self.selected += step
        self.selected_record()
        self.redraw()

    def push(self, host: HostProfile, local: str | None = None) -> TransferRecord:
        """This folder (or ``local``) into the host's workdir, as ``gputui push HOST`` does."""
        request = SyncRequest("push", local or os.getcwd(), host.workdir.rstrip("/") + "/")
        return self._start(host, request)

    def pull(self, host: HostProfile, remote: str, local: str | None = None) -> TransferRecord:
        """``remote`` (relative: inside the workdir) into ./NAME, as ``gputui pull`` does."""
        name = posixpath.basename(remote.rstrip("/")) or host.name
        target = local or os.path.join(os.getcwd(), name)
        return self._start(host, SyncRequest("pull", target, remote))

    def _start(self, host: HostProfile, request: SyncRequest) -> TransferRecord:
        record = services_of(self).transfers.start(host, request)
        self.selected = 0
        self.redraw()
        return record

    def action_cancel_transfer(self) -> None:
        self.cancel_selected()

    def action_resume_transfer(self) -> None:
        self.resume_selected()

    def cancel_selected(self) -> bool:
        record = self.selected_record()
        if record is None or not services_of(self).transfers.cancel(record):
            self.app.notify("No running transfer selected", severity="warning")
            return False
        return True

    def resume_selected(self) -> bool:
        record = self.selected_record()
        if record is None or not services_of(self).transfers.resume(record):
            self.app.notify("Select a stopped or failed transfer to resume", severity="warning")
            return False
        return True
