"""The command that hands the terminal to a job's tmux session: ``ssh -t … tmux attach``.

The system ``ssh`` is used (not asyncssh) because it owns the terminal properly; it is pointed at
gputui's known_hosts as well as the person's, and refuses a key that neither trusts.
"""

from __future__ import annotations

import shlex

from transfer.errors import GputuiError
from transfer.hosts import HostProfile
from transfer.jobs.state import JobStatus
from transfer.known_hosts import known_hosts_files


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


def ssh_argv(host: HostProfile, remote_command: str | None = None) -> list[str]:
    """``ssh -t`` to ``host`` with the profile's user, port, key and jump host."""
    files = [str(p) for p in known_hosts_files() if " " not in str(p)]
    argv = ["ssh", "-t", "-o", "StrictHostKeyChecking=yes"]
    if files:
        argv += ["-o", f"UserKnownHostsFile={' '.join(files)}"]
    if host.port != 22:
        argv += ["-p", str(host.port)]
    if host.user:
        argv += ["-l", host.user]
    if host.identity_file:
        argv += ["-i", host.identity_file]
    if host.proxy_jump:
        argv += ["-J", host.proxy_jump]
    argv += ["--", host.hostname]
    if remote_command is not None:
        argv.append(remote_command)
    return argv


def attach_argv(host: HostProfile, status: JobStatus) -> list[str]:
    """What to run, in the person's terminal, to watch the job live (detach: Ctrl+B D)."""
    tmux = tmux_attach_argv(status)
    if host.is_local:
        return tmux
    return ssh_argv(host, shlex.join(tmux))
