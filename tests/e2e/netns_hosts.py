"""Test hosts behind a real network boundary: one network namespace per host, joined to this
machine by a veth pair with private addresses (``10.231.N.0/24``), each running its own sshd.

The names carry a random tag, so that two runs on one machine never meet, and everything made
is undone by :meth:`NetnsLab.close`, which the fixture calls even when the test failed: every
process left in a namespace is killed, then the namespace and its veth pair are deleted.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import netguard
from sshd import SshServer

NET_PREFIX = "10.231."


class NetnsUnavailable(Exception):
    """This machine (or this user) cannot create network namespaces."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          stdin=subprocess.DEVNULL)


@dataclass
class NetnsHost:
    """One host: its namespace, the veth end on this side, its subnet and its sshd."""

    name: str
    namespace: str
    veth: str
    subnet: int
    server: SshServer | None = None

    @property
    def address(self) -> str:
        return f"{NET_PREFIX}{self.subnet}.2"

    @property
    def prefix(self) -> str:
        return f"{NET_PREFIX}{self.subnet}."

    def link(self, up: bool) -> None:
        """Take this side of the host's link down, or bring it back."""
        ip("link", "set", self.veth, "up" if up else "down")


class NetnsLab:
    """The namespaces, links and sshd servers of one test."""

    def __init__(self, root: Path, client_key: Path) -> None:
        self.root = root
        self.client_key = client_key
        self.tag = secrets.token_hex(3)
        self.hosts: list[NetnsHost] = []

    def check_available(self) -> None:
        """Raise NetnsUnavailable unless ``ip netns add`` works here."""
        if shutil.which("ip") is None:
            raise NetnsUnavailable("the `ip` command (iproute2) is not installed")
        probe = f"gputui-e2e-{self.tag}-probe"
        done = ip("netns", "add", probe, check=False)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise NetnsUnavailable(f"`ip netns add` failed (needs root): {reason}")
        ip("netns", "del", probe, check=False)

    def add_host(self, name: str) -> NetnsHost:
        """A namespace with a link to this machine and an sshd on port 22 of its address."""
        host = NetnsHost(
            name=name,
            namespace=f"gputui-e2e-{self.tag}-{name.lower()}",
            veth=f"gt{self.tag}{name.lower()}",
            subnet=self._free_subnet(),
        )
        peer = host.veth + "p"
        ip("netns", "add", host.namespace)
        self.hosts.append(host)  # from here on, close() undoes it
        ip("link", "add", host.veth, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", host.namespace)
        ip("addr", "add", f"{NET_PREFIX}{host.subnet}.1/24", "dev", host.veth)
        ip("link", "set", host.veth, "up")
        # While the link is down its route is gone: this one keeps the host's packets from
        # taking the default route off the machine; they fail here, as on a laptop gone offline.
        ip("route", "add", "unreachable", self._subnet_cidr(host), "metric", "4242")
        inside = ("netns", "exec", host.namespace, "ip")
        ip(*inside, "link", "set", "lo", "up")
        ip(*inside, "addr", "add", f"{host.address}/24", "dev", peer)
        ip(*inside, "link", "set", peer, "up")
        netguard.allow(host.prefix)

        server = SshServer(
            root=self.root / f"sshd-{name}",
            client_key=self.client_key,
            host=host.address,
            port=22,
            launcher=("ip", "netns", "exec", host.namespace),
        )
        host.server = server
        server.start()
        return host

    @staticmethod
    def _subnet_cidr(host: NetnsHost) -> str:
        return f"{NET_PREFIX}{host.subnet}.0/24"

    def _free_subnet(self) -> int:
        """A 10.231.N.0/24 that no interface or route of this machine uses yet."""
        seen = ip("-4", "-o", "addr").stdout + ip("-4", "route").stdout
        used = {int(n) for n in re.findall(r"\b10\.231\.(\d+)\.", seen)}
        used |= {h.subnet for h in self.hosts}
        free = [n for n in range(256) if n not in used]
        if not free:
            raise RuntimeError("no free 10.231.N.0/24 subnet left on this machine")
        return random.choice(free)

    def close(self) -> None:
        """Kill what runs in each namespace, then delete the namespaces and their links."""
        for host in reversed(self.hosts):
            if host.server is not None:
                with contextlib.suppress(Exception):
                    host.server.stop()
            kill_namespace_processes(host.namespace)
            ip("link", "del", host.veth, check=False)
            ip("route", "del", "unreachable", self._subnet_cidr(host), "metric", "4242",
               check=False)
            ip("netns", "del", host.namespace, check=False)
            with contextlib.suppress(ValueError):
                netguard.disallow(host.prefix)
        self.hosts.clear()


def kill_namespace_processes(namespace: str) -> None:
    """End every process in the namespace (jobs, tmux, sshd sessions) and wait for them.

    SIGTERM first, so that shells run their exit traps (a login shell may hold a lock file of
    the machine's own, such as pyenv's rehash lock); SIGKILL for what is left after a moment.
    """
    deadline = time.monotonic() + 10
    sig = signal.SIGTERM
    term_until = time.monotonic() + 2
    while time.monotonic() < deadline:
        pids = [int(p) for p in ip("netns", "pids", namespace, check=False).stdout.split()]
        if not pids:
            return
        if time.monotonic() > term_until:
            sig = signal.SIGKILL
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(0.05)
