"""Fakes and fixed data for the app and CLI tests (imported by name, unlike conftest)."""

from __future__ import annotations

from dataclasses import dataclass, field

from transfer.hosts import HostProfile

HOSTS_YAML = """\
hosts:
  a100-box:
    hostname: 203.0.113.7
    user: ubuntu
    port: 22022
    identity_file: ~/.ssh/id_lambda
    provider: lambda
    rate_usd_per_hour: 1.29
    tags: [a100, spot]
  h100-pod:
    hostname: h100.example.com
    user: root
    provider: runpod
    rate_usd_per_hour: 2.99
    tags: [h100]
  home-4090:
    hostname: 192.168.1.20
    provider: home
    tags: ["4090"]
"""
HOST_NAMES = ["local", "a100-box", "h100-pod", "home-4090"]



@dataclass
class FakeGpu:
    name: str
    memory_mib: int | None = None
    driver: str | None = None


@dataclass
class FakeReport:
    """Has the attributes of transfer.probe.ProbeReport that the app reads."""

    host: str
    latency_ms: float
    gpus: list[FakeGpu] = field(default_factory=list)
    os: str = "Linux"
    python: str | None = "3.11.9"
    tmux: bool = True
    rsync: bool = True
    nvidia_smi: bool = True
    workdir: str = "/root/gputui"
    disk_free_bytes: int | None = 100 * 2**30


@dataclass(frozen=True)
class FakeKey:
    host: str
    key_type: str
    fingerprint: str
    ca_key_type: str = ""
    ca_fingerprint: str = ""


@dataclass
class FakeChecks:
    """Scripted outcomes per host: each probe takes the next one (the last one repeats)."""

    outcomes: dict[str, list[object]] = field(default_factory=dict)
    keys: dict[str, FakeKey] = field(default_factory=dict)
    probed: list[str] = field(default_factory=list)
    trusted: list[tuple[str, FakeKey]] = field(default_factory=list)

    def script(self, name: str, *outcomes: object) -> None:
        self.outcomes[name] = list(outcomes)

    async def probe(self, host: HostProfile) -> object:
        self.probed.append(host.name)
        queue = self.outcomes[host.name]
        outcome = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def fetch(self, host: HostProfile) -> FakeKey:
        return self.keys[host.name]

    def trust(self, host: HostProfile, info: FakeKey) -> None:
        self.trusted.append((host.name, info))
