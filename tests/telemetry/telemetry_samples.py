"""Samples built from the recorded nvidia-smi and /proc outputs, as the stream builds them, and
a small app that shows one GPU panel, for the panel tests and the benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult

from trainers.protocol.gpu_sample import HostSample
from trainers.protocol.smi import ProcSnapshot, sample_from_smi
from transfer.hosts import HostProfile
from tui.services.base import ServicesApp
from tui.services.telemetry import FleetTelemetry
from tui.widgets.gpu_panel import GpuPanel

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "recorded"
STYLES = Path(__file__).resolve().parents[2] / "tui" / "styles"
#: 2026-11-22 08:00:00 UTC: a fixed "now" for every picture of the panel.
NOW = 1795334400.0


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def gpu_blocks(csv: str) -> list[str]:
    """The ticks of a recorded ``--loop-ms`` output, one CSV block each."""
    blocks: list[list[str]] = []
    for line in csv.splitlines():
        if line.split(",", 1)[0].strip() == "0" or not blocks:
            blocks.append([])
        blocks[-1].append(line)
    return ["\n".join(block) + "\n" for block in blocks]


def recorded_samples(box: str, hostname: str) -> list[HostSample]:
    """Every recorded tick of ``box`` with its processes and the recorded /proc snapshots."""
    query = sorted(RECORDED.glob(f"recorded_nvidia_smi_{box}_query_gpu*"))[0].read_text()
    apps = recorded(f"recorded_nvidia_smi_{box}_compute_apps.csv")
    before = ProcSnapshot.parse(recorded("recorded_proc_vm2cpu_0.txt"), NOW - 1.006)
    after = ProcSnapshot.parse(recorded("recorded_proc_vm2cpu_1.txt"), NOW)
    return [
        sample_from_smi(
            NOW, block, apps, proc=after, previous_proc=before, hostname=hostname,
            workdir="/workspace",
        )
        for block in gpu_blocks(query)
    ]


class PanelApp(ServicesApp):
    """One GPU panel on a screen of its own, fed by hand (no stream is started)."""

    CSS_PATH: ClassVar = [STYLES / "gpu_panel.tcss"]
    CSS = ".pane { border: round $primary; border-title-style: bold; padding: 0 1; }"

    def __init__(self, host: HostProfile, clock: list[float]) -> None:
        super().__init__()
        self.host = host
        self.clock = clock
        self.telemetry = FleetTelemetry(self, clock=lambda: self.clock[0], persist=False)
        self.telemetry.track(host)

    def host_named(self, name: str) -> HostProfile | None:
        return None  # nothing to stream: the test feeds the events

    def compose(self) -> ComposeResult:
        yield GpuPanel(self.host.name, id="gpu")
