"""The table of hosts: one row per profile, keyed by the profile name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import DataTable

from transfer.hosts import HostProfile
from tui.host_status import UNKNOWN, HostStatus
from tui.widgets.fleet_columns import FLEET_COLUMNS

#: key, label, width (None: as wide as the cells). The fleet columns sit before the tags so that
#: on a narrow terminal the tags are cut, not the money.
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("name", "Name", None),
    ("address", "Address", None),
    ("gpus", "GPUs", None),
    ("rate", "$/h", None),
    ("reach", "Reachability", None),
    *FLEET_COLUMNS,
    ("tags", "Tags", None),
)

_REACH_STYLES = {
    "ok": "green",
    "failed": "red",
    "key-unknown": "bold yellow",
    "key-changed": "bold red",
    "testing": "italic",
}


class HostTable(DataTable[Text | str]):
    """Rows are keyed by host name, so the cursor stays on its host when the rows change."""

    class TypedToFilter(Message):
        """A printable key that no binding wants: it starts a filter."""

        def __init__(self, character: str) -> None:
            super().__init__()
            self.character = character

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    @property
    def highlighted_name(self) -> str | None:
        if not self.row_count:
            return None
        row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return str(row_key.value)

    def show(self, hosts: Sequence[HostProfile], statuses: Mapping[str, HostStatus]) -> None:
        """Replace the rows, keeping the cursor on the same host when it is still listed."""
        keep = self.highlighted_name
        self.clear()
        for host in hosts:
            status = statuses.get(host.name, HostStatus())
            self.add_row(*_cells(host, status), key=host.name)
        names = [host.name for host in hosts]
        if keep in names:
            self.move_cursor(row=names.index(keep), animate=False)

    def on_key(self, event: events.Key) -> None:
        if (
            event.is_printable
            and event.character
            and not event.character.isspace()
            and event.key not in self.screen.active_bindings
        ):
            event.stop()
            event.prevent_default()
            self.post_message(self.TypedToFilter(event.character))


def _cells(host: HostProfile, status: HostStatus) -> tuple[Text | str, ...]:
    rate = f"{host.rate_usd_per_hour:.2f}" if host.rate_usd_per_hour else UNKNOWN
    reach = Text(status.reachability(), style=_REACH_STYLES.get(status.state, "dim"))
    return (
        Text(host.name, style="bold"),
        host.address,
        Text(status.gpu_summary()),
        Text(rate, justify="right"),
        reach,
        ", ".join(host.tags),
    )
