"""The first screen: every host, a filter that matches as you type, and the host actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from transfer.hosts import LOCAL, HostProfile
from tui.actions import HOST_LIST_ACTIONS, ActionSpec, bindings
from tui.host_filter import filter_hosts
from tui.services.base import ServicesApp, services_of
from tui.widgets import fleet_columns
from tui.widgets.host_table import HostTable
from tui.widgets.text_input import TextInput

if TYPE_CHECKING:
    from tui.screens.host_form import HostFormScreen

FILTER_HINT = "Filter: type a name, address, tag or provider  (/ to focus, Esc to clear)"


class HostListScreen(Screen[None]):
    """Pick a host: the table has the focus, and any key that is not a command filters."""

    ACTIONS: ClassVar[tuple[ActionSpec, ...]] = HOST_LIST_ACTIONS
    BINDINGS: ClassVar = bindings(HOST_LIST_ACTIONS)
    AUTO_FOCUS = "#hosts"

    @property
    def services(self) -> ServicesApp:
        return services_of(self)

    @property
    def table(self) -> HostTable:
        return self.query_one("#hosts", HostTable)

    @property
    def filter_input(self) -> Input:
        return self.query_one("#filter", Input)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="config-error")
        yield TextInput(placeholder=FILTER_HINT, id="filter", select_on_focus=False)
        yield HostTable(id="hosts")
        yield Static(id="host-count")
        yield Footer()

    def on_mount(self) -> None:
        self.services.hosts_changed.subscribe(self, self._hosts_changed)
        self.fleet = fleet_columns.FleetRefresh(self.table, self.services.telemetry)
        self.services.telemetry.changed.subscribe(self, self.fleet.mark, immediate=True)
        self.set_interval(fleet_columns.REFRESH_S, self.fleet.flush)
        self._hosts_changed(None)

    def _hosts_changed(self, _: None) -> None:
        self.refresh_hosts()
        self.services.telemetry.follow(self.services.hosts, self.services.statuses)

    def refresh_hosts(self) -> None:
        app = self.services
        shown = filter_hosts(app.hosts, self.filter_input.value)
        self.table.show(shown, app.statuses)
        fleet_columns.fill(self.table, app.telemetry)
        banner = self.query_one("#config-error", Static)
        banner.update(f"hosts.yaml not read, nothing will be written to it: {app.config_error}"
                      if app.config_error else "")
        banner.display = bool(app.config_error)
        count = self.query_one("#host-count", Static)
        if not app.hosts_loaded:
            count.update("Reading hosts…")
        elif len(shown) == len(app.hosts):
            count.update(f"{len(app.hosts)} host{'s' if len(app.hosts) != 1 else ''}")
        else:
            count.update(f"{len(shown)} of {len(app.hosts)} hosts match")

    def highlighted_host(self) -> HostProfile | None:
        name = self.table.highlighted_name
        return self.services.host_named(name) if name else None

    # -- filter ---------------------------------------------------------------------------
    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self.refresh_hosts()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.action_open_host()

    @on(HostTable.TypedToFilter)
    def _typed_to_filter(self, event: HostTable.TypedToFilter) -> None:
        self.filter_input.focus()
        self.filter_input.insert_text_at_cursor(event.character)

    def action_focus_filter(self) -> None:
        self.filter_input.focus()

    def action_clear_filter(self) -> None:
        self.filter_input.value = ""
        self.table.focus()

    # -- moving and opening -----------------------------------------------------------------
    def action_cursor_down(self) -> None:
        self.table.action_cursor_down()

    def action_cursor_up(self) -> None:
        self.table.action_cursor_up()

    @on(DataTable.RowSelected, "#hosts")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(str(event.row_key.value))

    def action_open_host(self) -> None:
        host = self.highlighted_host()
        if host is not None:
            self._open(host.name)

    def _open(self, name: str) -> None:
        # The dashboard's modules (panes, plots, jobs) load on the first open, not at start-up.
        from tui.screens.host_screen import open_host

        open_host(self.services, name)

    # -- editing ------------------------------------------------------------------------
    def action_add_host(self) -> None:
        if not self.services.can_write_hosts():
            return
        taken = {host.name for host in self.services.hosts}
        self.app.push_screen(_host_form(None, taken), self._saved)

    def action_edit_host(self) -> None:
        host = self.highlighted_host()
        if host is None or not self.services.can_write_hosts():
            return
        taken = {h.name for h in self.services.hosts if h.name != host.name}
        self.app.push_screen(
            _host_form(host, taken), lambda edited: self._saved(edited, host.name)
        )

    def _saved(self, host: HostProfile | None, replaces: str | None = None) -> None:
        if host is not None:
            self.services.save_host(host, replaces)

    def action_delete_host(self) -> None:
        host = self.highlighted_host()
        if host is None:
            return
        if host.name == LOCAL:
            self.notify("The built-in local host cannot be deleted.", severity="warning")
            return
        if not self.services.can_write_hosts():
            return
        from tui.screens.confirm import ConfirmScreen  # a dialog: loaded when first asked

        question = f"Delete the host profile [b]{host.name}[/b] ({escape(host.address)})?"
        self.app.push_screen(
            ConfirmScreen(question, confirm_label="Delete"),
            lambda yes: self.services.delete_host(host.name) if yes else None,
        )

    def action_test_host(self) -> None:
        host = self.highlighted_host()
        if host is not None:
            self.services.test_host(host.name)


def _host_form(host: HostProfile | None, taken: set[str]) -> HostFormScreen:
    """The add/edit dialog, its module loaded when first opened rather than at start-up."""
    from tui.screens.host_form import HostFormScreen

    return HostFormScreen(host, taken)
