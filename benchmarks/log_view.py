"""How fast the log view ingests lines, and whether the UI stays responsive meanwhile.

Feeds gputui's LogView, and beside it a minimal Textual ``Log``, at increasing rates in a
headless app: a worker thread makes the lines and posts one message per batch (every 20 ms), as
the job log tail does. Each widget and rate runs in a fresh process so that peak memory is its
own. Frames are rendered to terminal output as a real terminal would get them (and dropped).

Printed per widget and rate (the median of ``--repeat`` runs): lines/s offered and ingested,
the time to drain the backlog after feeding stops, the longest UI stall and its parts (the
longest wait from a batch landing in the widget to the frame that shows it; the largest gap
between 10 ms heartbeat ticks beyond their period; the longest wait from a key press to its
handler), frames per second, and peak memory (max RSS of the process).

    .venv/bin/python benchmarks/log_view.py                 # full table
    .venv/bin/python benchmarks/log_view.py --rates 50000   # one rate
    .venv/bin/python benchmarks/log_view.py --gc-freeze     # with gc.freeze() after start-up

Most of the remaining stall is the garbage collector's full passes over the objects an app
keeps for its whole life; ``--gc-freeze`` shows what freezing them after start-up saves.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from textual import events
from textual.app import App, ComposeResult
from textual.message import Message
from textual.widgets import Log

from tui.widgets.log_view import LogView

BATCH_S = 0.02
HEARTBEAT_S = 0.01
KEY_EVERY_S = 0.1
MAX_LINES = 100_000
SIZE = (160, 48)
STYLES = Path(__file__).resolve().parents[1] / "tui" / "styles"


class Batch(Message):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines


class BenchApp(App[None]):
    CSS_PATH: ClassVar = [STYLES / "log_lines.tcss", STYLES / "log_view.tcss"]

    def __init__(self, widget: str) -> None:
        super().__init__()
        self.widget_kind = widget
        self.ingested = 0
        self.frames: list[float] = []
        self.beats: list[float] = []
        self.key_delays: list[float] = []
        self.frame_waits: list[float] = []
        self.pending_since: float | None = None
        self.recording = False

    def compose(self) -> ComposeResult:
        if self.widget_kind == "logview":
            yield LogView(max_lines=MAX_LINES, id="view")
        else:
            yield Log(max_lines=MAX_LINES, id="view")

    def on_mount(self) -> None:
        self.set_interval(HEARTBEAT_S, self._beat)
        if self.widget_kind == "logview":
            lines = self.query_one(LogView).log_lines
            lines.focus()
            append = lines.append

            def timed_append(batch: Any, partial: str | None = None) -> None:
                self._landed()
                append(batch, partial)

            lines.append = timed_append  # type: ignore[method-assign,assignment]
        else:
            self.query_one(Log).focus()

    def _landed(self) -> None:
        if self.pending_since is None:
            self.pending_since = time.perf_counter()

    def _beat(self) -> None:
        if self.recording:
            self.beats.append(time.perf_counter())

    def _display(self, screen: Any, renderable: Any) -> None:
        # Headless apps skip terminal output; produce it (and drop it) as a terminal would get it.
        if renderable is not None and hasattr(renderable, "render_segments"):
            renderable.render_segments(self.console)
            now = time.perf_counter()
            if self.recording:
                self.frames.append(now)
                if self.pending_since is not None:
                    self.frame_waits.append(now - self.pending_since)
            self.pending_since = None

    def on_batch(self, message: Batch) -> None:
        self._landed()
        self.query_one(Log).write_lines(message.lines)
        self.ingested += len(message.lines)

    def ingested_lines(self) -> int:
        if self.widget_kind == "logview":
            return self.query_one(LogView).log_lines.total_received
        return self.ingested

    def on_key(self, event: events.Key) -> None:
        if event.key == "f9" and event.character is None and hasattr(event, "sent_at"):
            self.key_delays.append(time.perf_counter() - event.sent_at)


def make_line(n: int) -> str:
    return f"step {n:>9} | loss {1.0 / (1 + n % 977):.6f} | lr 3.0e-04 | tok/s {n % 50000:>6} | ok"


def feeder(app: BenchApp, rate: int, seconds: float, stop: threading.Event) -> None:
    view = app.query_one("#view")
    per_batch = max(1, round(rate * BATCH_S))
    start = time.perf_counter()
    next_key = start
    sent = 0
    n = 0
    while not stop.is_set():
        now = time.perf_counter()
        if now - start >= seconds:
            break
        due = int((now - start) * rate) - sent
        if due >= per_batch:
            lines = [make_line(i) for i in range(n, n + due)]
            n += due
            sent += due
            if isinstance(view, LogView):
                view.post_lines(lines)
            else:
                app.post_message(Batch(lines))
        if now >= next_key:
            key = events.Key("f9", None)
            key.sent_at = time.perf_counter()  # type: ignore[attr-defined]
            app.post_message(key)
            next_key = now + KEY_EVERY_S
        time.sleep(BATCH_S / 2)
    app.offered = sent  # type: ignore[attr-defined]


def max_gap(times: list[float], period: float) -> float:
    if len(times) < 2:
        return float("nan")
    return max(b - a for a, b in itertools.pairwise(times)) - period


async def run_child(widget: str, rate: int, seconds: float, freeze: bool) -> dict[str, Any]:
    app = BenchApp(widget)
    async with app.run_test(headless=True, size=SIZE) as pilot:
        await pilot.pause(0.3)
        if freeze:
            # What an app can do once it has started: keep the garbage collector's full passes
            # off the objects that live as long as the app.
            gc.freeze()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stop = threading.Event()
        app.recording = True
        started = time.perf_counter()
        thread = threading.Thread(target=feeder, args=(app, rate, seconds, stop), daemon=True)
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.05)
        fed_until = time.perf_counter()
        ingested_in_window = app.ingested_lines()
        offered = getattr(app, "offered", 0)
        while app.ingested_lines() < offered and time.perf_counter() - fed_until < 30:
            await asyncio.sleep(0.01)
        drained = time.perf_counter()
        app.recording = False
        await pilot.pause(0.1)
    window = fed_until - started
    frame_gap = max(app.frame_waits) if app.frame_waits else float("nan")
    beat_gap = max_gap(app.beats, HEARTBEAT_S)
    key_delay = max(app.key_delays) if app.key_delays else float("nan")
    return {
        "widget": widget,
        "offered_per_s": offered / window,
        "ingested_per_s": ingested_in_window / window,
        "drain_s": drained - fed_until,
        "max_frame_wait_ms": frame_gap * 1000,
        "max_heartbeat_gap_ms": beat_gap * 1000,
        "max_key_delay_ms": key_delay * 1000,
        "frames_per_s": len(app.frames) / max(1e-9, drained - started),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mib": rss_before / 1024,
    }


def run_one(widget: str, rate: int, seconds: float, freeze: bool) -> dict[str, Any] | str:
    env = {**os.environ, "TEXTUAL_ANIMATIONS": "none"}
    command = [sys.executable, __file__, "--child", "--widget", widget, "--rate", str(rate)]
    if freeze:
        command.append("--gc-freeze")
    out = subprocess.run(
        [*command, "--seconds", str(seconds)], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        return (out.stderr.strip().splitlines() or ["failed"])[-1]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["stall_ms"] = max(
        result["max_frame_wait_ms"], result["max_heartbeat_gap_ms"], result["max_key_delay_ms"]
    )
    return result


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "widget"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="10000,25000,50000,100000,200000")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--widgets", default="logview,log")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() once the app has started"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--widget", default="logview", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=int, default=50000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(run_child(args.widget, args.rate, args.seconds, args.gc_freeze))
        print(json.dumps(result))
        return

    print(
        f"{'widget':<13}{'offered/s':>10}{'ingested/s':>12}{'drain s':>8}{'stall ms':>9}"
        f"{'frame':>7}{'beat':>6}{'key':>6}{'fps':>5}{'peak MiB':>9}   (median of {args.repeat})"
    )
    for rate in (int(r) for r in args.rates.split(",")):
        for widget in args.widgets.split(","):
            name = "LogView" if widget == "logview" else "textual Log"
            outcomes = [
                run_one(widget, rate, args.seconds, args.gc_freeze) for _ in range(args.repeat)
            ]
            runs = [o for o in outcomes if isinstance(o, dict)]
            if not runs:
                print(f"{name:<13}{rate:>10,} failed: {outcomes[0]}")
                continue
            r = median_of(runs)
            print(
                f"{name:<13}{r['offered_per_s']:>10,.0f}{r['ingested_per_s']:>12,.0f}"
                f"{r['drain_s']:>8.2f}{r['stall_ms']:>9.0f}{r['max_frame_wait_ms']:>7.0f}"
                f"{r['max_heartbeat_gap_ms']:>6.0f}{r['max_key_delay_ms']:>6.0f}"
                f"{r['frames_per_s']:>5.0f}{r['peak_rss_mib']:>9.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
