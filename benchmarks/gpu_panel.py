"""Whether 20 hosts × 8 GPUs of telemetry at 1 Hz keep the app smooth.

Drives synthetic samples (random-walk utilization, memory, temperature, power, one process per
GPU) for 20 hosts of 8 GPUs each into the headless gputui app through ``FleetTelemetry.feed``,
each host once a second at its own phase, as independent streams arrive. Every host already has
five minutes of history, so the sparklines are full. Nothing streams for real: the app's
``watch`` only creates the host's state here.

Three runs, each in a fresh process, frames rendered to terminal output as a real terminal would
get them (and dropped):

- ``list``: the host list, its fleet columns updating for all 20 hosts;
- ``panel``: the host screen of one host (its GPU panel with 8 cards) while all 20 update;
- ``static``: a minimal Textual app doing the same with 160 ``Static`` widgets, one per GPU,
  updated with a line of text, as the baseline.

With ``--gc-freeze`` every run calls ``gc.freeze()`` once its start-up is done, so that full
garbage collections no longer walk the objects made at start-up (Textual's, pydantic's, …); the
longest stalls left without it are such collections.

Printed per run, the median of ``--repeat`` runs: the longest UI stall (the larger of the
longest gap between 10 ms heartbeat ticks beyond their period and the longest wait from a posted
key press to its handler), the 99th percentile heartbeat gap, frames per second, and the mean
time spent per sample.

    .venv/bin/python benchmarks/gpu_panel.py
    .venv/bin/python benchmarks/gpu_panel.py --seconds 20 --runs panel --gc-freeze
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual import events
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

HOSTS = 20
GPUS = 8
RATE_HZ = 1.0
HISTORY_S = 300
HEARTBEAT_S = 0.01
KEY_EVERY_S = 0.1
SIZE = (160, 48)


class Walk:
    """Telemetry of one host that drifts like a training run."""

    def __init__(self, host: int) -> None:
        self.random = random.Random(host)
        self.utils = [self.random.uniform(0, 100) for _ in range(GPUS)]
        self.memory = [self.random.uniform(10_000, 80_000) for _ in range(GPUS)]

    def step(self) -> tuple[list[int], list[int]]:
        for i in range(GPUS):
            self.utils[i] = min(100.0, max(0.0, self.utils[i] + self.random.uniform(-15, 15)))
            memory = self.memory[i] + self.random.uniform(-500, 500)
            self.memory[i] = min(81_000.0, max(1_000.0, memory))
        return [round(u) for u in self.utils], [round(m) for m in self.memory]


def host_sample(host: int, walk: Walk, at: float) -> Any:
    from trainers.protocol.gpu_sample import GpuProcess, GpuSample, HostSample, HostStats

    utils, memory = walk.step()
    gpus = [
        GpuSample(
            index=i, name="NVIDIA H100 80GB HBM3", uuid=f"GPU-{host:02d}-{i}",
            utilization_pct=utils[i], memory_used_mib=memory[i], memory_total_mib=81_559,
            temperature_c=40 + utils[i] // 3, power_draw_w=100.0 + 6 * utils[i],
            power_limit_w=700.0, fan_pct=None, sm_clock_mhz=1980,
            processes=[GpuProcess(pid=1000 + i, user="root", gpu_memory_mib=memory[i] - 500,
                                  command="python -m trainers.lora configs/prod.yaml")],
        )
        for i in range(GPUS)
    ]
    stats = HostStats(cpu_pct=35.0, cpu_count=192, load_1=24.0, ram_used_mib=400_000,
                      ram_total_mib=2_000_000, disk_path="/workspace", disk_free_mib=3_000_000,
                      disk_total_mib=7_000_000, net_rx_bps=1.2e8, net_tx_bps=3.0e6)
    return HostSample(timestamp=at, hostname=f"h{host:02d}", source="nvml",
                      driver_version="550.54.15", gpus=gpus, host=stats)


class Probe:
    """Heartbeats, key-press delays and frames of one app."""

    def __init__(self) -> None:
        self.beats: list[float] = []
        self.key_delays: list[float] = []
        self.frames = 0
        self.recording = False
        self.feed_times: list[float] = []

    def beat(self) -> None:
        if self.recording:
            self.beats.append(time.perf_counter())

    def hook(self, message: Any) -> None:
        """Sees every message the app dispatches: the posted key presses among them."""
        if isinstance(message, events.Key) and hasattr(message, "sent_at"):
            self.key_delays.append(time.perf_counter() - message.sent_at)

    def result(self, seconds: float) -> dict[str, float]:
        gaps = [b - a - HEARTBEAT_S for a, b in itertools.pairwise(self.beats)] or [float("nan")]
        keys = self.key_delays or [float("nan")]
        return {
            "stall_ms": 1000 * max(max(gaps), max(keys)),
            "beat_max_ms": 1000 * max(gaps),
            "beat_p99_ms": 1000 * statistics.quantiles(gaps, n=100)[98] if len(gaps) > 2 else 0,
            "key_max_ms": 1000 * max(keys),
            "fps": self.frames / seconds,
            "feed_ms": 1000 * statistics.mean(self.feed_times) if self.feed_times else 0.0,
        }


def instrument(app: App[Any], probe: Probe) -> None:
    """Render frames as a terminal would get them, and time posted key presses."""
    def display(screen: Any, renderable: Any) -> None:
        if renderable is not None and hasattr(renderable, "render_segments"):
            renderable.render_segments(app.console)
            if probe.recording:
                probe.frames += 1

    app._display = display  # type: ignore[method-assign]


FREEZE = "--gc-freeze" in sys.argv


async def drive(app: App[Any], probe: Probe, feed: Any, seconds: float) -> None:
    """Feed every host once a second at its own phase, post a key every 0.1 s, for ``seconds``."""
    if FREEZE:
        gc.freeze()
    walks = [Walk(h) for h in range(HOSTS)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    probe.recording = True
    next_key = start
    tick = 0
    while loop.time() - start < seconds:
        for host in range(HOSTS):
            due = start + tick / RATE_HZ + host / (HOSTS * RATE_HZ)
            while loop.time() < due:
                now = loop.time()
                if now >= next_key:
                    key = events.Key("f9", None)
                    key.sent_at = time.perf_counter()  # type: ignore[attr-defined]
                    app.post_message(key)
                    next_key = now + KEY_EVERY_S
                await asyncio.sleep(min(due, next_key) - now if min(due, next_key) > now else 0)
            began = time.perf_counter()
            feed(host, host_sample(host, walks[host], time.time()))
            probe.feed_times.append(time.perf_counter() - began)
        tick += 1
    probe.recording = False


# -- gputui ------------------------------------------------------------------------------------


async def run_gputui(screen: str, seconds: float) -> dict[str, float]:
    home = tempfile.mkdtemp(prefix="gputui-bench-")
    os.environ["GPUTUI_HOME"] = home
    from transfer.hosts import HostProfile, HostStore
    from transfer.telemetry.events import TelemetryJobs, TelemetrySample
    from tui.app import GputuiApp

    hosts = [
        HostProfile(name=f"h{h:02d}", hostname=f"10.0.0.{h + 1}", rate_usd_per_hour=2.49,
                    provider="bench")
        for h in range(HOSTS)
    ]
    HostStore().save(hosts)
    app = GputuiApp()
    probe = Probe()
    instrument(app, probe)
    app.telemetry.watch = app.telemetry.track  # type: ignore[method-assign]

    async with app.run_test(headless=True, size=SIZE, message_hook=probe.hook) as pilot:
        app.set_interval(HEARTBEAT_S, probe.beat)
        await pilot.pause(0.5)
        now = time.time()
        for host, profile in enumerate(hosts):
            app.telemetry.track(profile)
            app.telemetry.feed(TelemetryJobs(profile.name, (), now - HISTORY_S))
            walk = Walk(1000 + host)
            for ago in range(HISTORY_S, 0, -1):
                app.telemetry.feed(TelemetrySample(profile.name, host_sample(host, walk, now - ago),
                                                   now - ago))
        if screen == "panel":
            app.open_host("h00")
        await pilot.pause(0.5)

        def feed(host: int, sample: Any) -> None:
            app.telemetry.feed(TelemetrySample(f"h{host:02d}", sample, time.time()))

        await drive(app, probe, feed, seconds)
        await pilot.pause(0.2)
    return probe.result(seconds)


# -- the baseline --------------------------------------------------------------------------


class StaticApp(App[None]):
    """160 Static widgets, one line each, updated with text."""

    def __init__(self, probe: Probe) -> None:
        super().__init__()
        self.probe = probe

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            for host in range(HOSTS):
                for gpu in range(GPUS):
                    yield Static(id=f"g{host}-{gpu}")

    def on_mount(self) -> None:
        self.set_interval(HEARTBEAT_S, self.probe.beat)

    def show(self, host: int, sample: Any) -> None:
        for gpu in sample.gpus:
            self.query_one(f"#g{host}-{gpu.index}", Static).update(
                f"h{host:02d} GPU {gpu.index} {gpu.name} util {gpu.utilization_pct}% "
                f"mem {gpu.memory_used_mib}/{gpu.memory_total_mib} MiB {gpu.temperature_c}°C "
                f"{gpu.power_draw_w:.0f}/{gpu.power_limit_w:.0f} W"
            )


async def run_static(seconds: float) -> dict[str, float]:
    probe = Probe()
    app = StaticApp(probe)
    instrument(app, probe)
    async with app.run_test(headless=True, size=SIZE, message_hook=probe.hook) as pilot:
        await pilot.pause(0.5)
        await drive(app, probe, app.show, seconds)
        await pilot.pause(0.2)
    return probe.result(seconds)


# -- driver ------------------------------------------------------------------------------------

LABELS = {
    "list": "gputui host list, fleet columns",
    "panel": "gputui host screen, GPU panel",
    "static": "minimal Textual app, 160 Static",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", default="list,panel,static")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after start-up")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row (median)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "static":
            result = asyncio.run(run_static(args.seconds))
        else:
            result = asyncio.run(run_gputui(args.child, args.seconds))
        print(json.dumps(result))
        return
    print(
        f"{HOSTS} hosts × {GPUS} GPUs at {RATE_HZ:g} Hz for {args.seconds:g} s, "
        f"{SIZE[0]}x{SIZE[1]} headless" + (", gc.freeze() after start-up" if FREEZE else "")
    )
    print(
        f"{'run':<34}{'stall ms':>9}{'beat p99':>9}{'key ms':>8}{'fps':>6}{'feed ms':>9}"
        f"   (median of {args.repeat})"
    )
    env = {**os.environ, "TEXTUAL_ANIMATIONS": "none"}
    for run in args.runs.split(","):
        results = []
        for _ in range(args.repeat):
            done = subprocess.run(
                [sys.executable, __file__, "--child", run, "--seconds", str(args.seconds)]
                + (["--gc-freeze"] if FREEZE else []),
                capture_output=True, text=True, env=env, check=False,
            )
            if done.returncode != 0:
                error = (done.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{LABELS[run]:<34} failed: {error}")
                break
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if len(results) < args.repeat:
            continue
        r = {key: statistics.median(result[key] for result in results) for key in results[0]}
        print(
            f"{LABELS[run]:<34}{r['stall_ms']:>9.1f}{r['beat_p99_ms']:>9.1f}"
            f"{r['key_max_ms']:>8.1f}{r['fps']:>6.0f}{r['feed_ms']:>9.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
