"""The system ``ssh -t`` command line for a host, for work that needs the person's terminal.

The system ``ssh`` is used (not asyncssh) because it owns the terminal properly; it is pointed at
gputui's known_hosts as well as the person's, and refuses a key that neither trusts.
"""

from __future__ import annotations

from transfer.hosts import HostProfile
from transfer.known_hosts import known_hosts_files


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
