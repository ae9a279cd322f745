"""Every action a person can take, declared once.

Bindings (with ids, so a keymap can remap them), the footer, the help screen and the command
palette are all built from these specs, so a key shown anywhere is a key that works.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class ActionSpec:
    """One action: its key, its footer label, its palette title and a line of help."""

    id: str
    key: str
    action: str
    label: str
    title: str
    help: str
    show: bool = True
    in_palette: bool = True
    priority: bool = False

    def binding(self) -> Binding:
        return Binding(
            self.key,
            self.action,
            self.label,
            show=self.show,
            priority=self.priority,
            tooltip=self.help,
            id=self.id,
        )


def bindings(specs: tuple[ActionSpec, ...]) -> list[BindingType]:
    return [spec.binding() for spec in specs]


def _hidden(id: str, key: str, action: str, label: str) -> ActionSpec:
    """A movement key: it works and help lists it, but the footer and palette leave it out."""
    return ActionSpec(id, key, action, label, label, label, show=False, in_palette=False)


APP_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("app.quit", "q", "quit", "Quit", "Quit", "Leave gputui"),
    ActionSpec("app.quit-ctrl", "ctrl+q", "quit", "Quit", "Quit", "Leave gputui, even from a "
               "text field", show=False, in_palette=False, priority=True),
    ActionSpec("app.help", "question_mark", "help", "Help", "Help",
               "Show the keys of this screen"),
    ActionSpec("app.palette", "ctrl+p", "command_palette", "Commands", "Commands",
               "Search every action by name", show=False, in_palette=False),
)

HOST_LIST_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("host-list.open", "enter", "open_host", "Open", "Open host",
               "Open the dashboard of the highlighted host", priority=True),
    ActionSpec("host-list.filter", "slash", "focus_filter", "Filter", "Filter hosts",
               "Fuzzy filter on name, address, tags and provider (or just start typing)"),
    ActionSpec("host-list.add", "a", "add_host", "Add", "Add host", "Add a host profile"),
    ActionSpec("host-list.edit", "e", "edit_host", "Edit", "Edit host",
               "Edit the highlighted host profile"),
    ActionSpec("host-list.delete", "D", "delete_host", "Delete", "Delete host",
               "Delete the highlighted host profile (asks first)"),
    ActionSpec("host-list.test", "t", "test_host", "Test", "Test host",
               "Connect to the highlighted host and probe latency, GPUs and tools"),
    ActionSpec("host-list.clear-filter", "escape", "clear_filter", "Clear filter",
               "Clear filter", "Empty the filter and go back to the list", show=False),
    _hidden("host-list.down", "j", "cursor_down", "Move down"),
    _hidden("host-list.up", "k", "cursor_up", "Move up"),
    _hidden("host-list.down-arrow", "down", "cursor_down", "Move down"),
    _hidden("host-list.up-arrow", "up", "cursor_up", "Move up"),
)

HOST_SCREEN_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("host.back", "escape", "back", "Back", "Back to hosts", "Back to the host list"),
    ActionSpec("host.test", "t", "test_host", "Test", "Test this host",
               "Connect to this host and probe it again"),
)

#: The host dashboard's panes in focus order (tab), each with the digit that focuses it.
DASHBOARD_PANES: tuple[tuple[str, str, str], ...] = (
    ("jobs", "1", "Jobs"),
    ("logs", "2", "Logs"),
    ("metrics", "3", "Metrics"),
    ("transfers", "4", "Transfers"),
    ("gpu", "5", "GPU"),
)

# Moving between the panes of the host dashboard: out of the footer (help and palette list them).
DASHBOARD_ACTIONS: tuple[ActionSpec, ...] = (
    *(
        ActionSpec(f"host.focus-{pane}", key, f"focus_pane('{pane}')", title,
                   f"Go to {title}", f"Move the focus to the {title} pane", show=False)
        for pane, key, title in DASHBOARD_PANES
    ),
    ActionSpec("host.next-pane", "tab", "next_pane", "Next pane", "Next pane",
               "Move the focus to the next pane", show=False),
    ActionSpec("host.previous-pane", "shift+tab", "previous_pane", "Previous pane",
               "Previous pane", "Move the focus to the previous pane", show=False),
)

# The loop's job actions. The host screen binds them, so they work wherever the focus is on it
# and act on the job selected in the Jobs pane; the pane binds them too, for when it stands alone.
JOB_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("jobs.new", "n", "new_job", "New job", "New job",
               "Launch a job: a training config from configs/ or any command (asks first)"),
    ActionSpec("jobs.setup", "u", "run_setup", "Setup", "Run setup",
               "Run the host's setup command as a job (asks first)"),
    ActionSpec("jobs.log", "enter", "open_log", "Log", "Open the job's log",
               "Show the selected job's log full screen"),
    ActionSpec("jobs.stop", "s", "stop_job", "Stop", "Stop the job",
               "SIGTERM the selected job so it saves a checkpoint; SIGKILL after the grace period "
               "(asks first)"),
    ActionSpec("jobs.resume", "R", "resume_job", "Resume", "Resume the job",
               "Run a stopped or preempted job again; the trainer goes on from its newest "
               "checkpoint (asks first)"),
    ActionSpec("jobs.kill", "S", "kill_job", "Kill", "Kill the job",
               "SIGKILL the selected job at once, no checkpoint (asks first)", show=False),
    ActionSpec("jobs.attach", "a", "attach", "Attach", "Attach to the job",
               "Watch the selected job live in its tmux session (detach: Ctrl+B D)", show=False),
)
