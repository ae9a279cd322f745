"""The command that hands the terminal to a job's tmux session: ``tmux attach``, run where the
job's host is reached from a terminal (``ssh -t …`` for a host over SSH; see the link).
"""

from __future__ import annotations

from transfer.connect import open_link
from transfer.errors import GputuiError
from transfer.hosts import HostProfile
from transfer.jobs.state import JobStatus


class CannotAttach(GputuiError):
    """The job has no terminal to attach to."""


def tmux_attach_argv(status: JobStatus) -> list[str]:
    """``tmux [-S socket] attach-session -t =SESSION`` for the job's session."""
    meta = status.meta
    if meta.runner != "tmux" or not meta.tmux_session:
        raise CannotAttach(
            f"{meta.id} runs without tmux (the host had none); follow it with "
            f"`gputui logs {meta.host} {meta.id} -f`"
        )
    if not status.state.is_active:
        raise CannotAttach(
            f"{meta.id} has ended ({status.state_text}); its log stays readable: "
            f"`gputui logs {meta.host} {meta.id}`"
        )
    socket = ["-S", meta.tmux_socket] if meta.tmux_socket else []
    return ["tmux", *socket, "attach-session", "-t", f"={meta.tmux_session}"]


def attach_argv(host: HostProfile, status: JobStatus) -> list[str]:
    """What to run, in the person's terminal, to watch the job live (detach: Ctrl+B D)."""
    return open_link(host).terminal_argv(tmux_attach_argv(status))
