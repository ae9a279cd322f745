"""How long `gputui` takes to show its first screen, against a minimal Textual app.

Two programs, each started as a fresh process in a pseudo-terminal of 120x40, as a person's
terminal would start them:

- ``gputui``: the real app (``python -m tui.cli``) with 20 host profiles in an isolated
  ``GPUTUI_HOME`` (and ``HOME``, ssh folder, keepers' folder), so nothing of the person's is read;
- ``minimal``: a Textual app whose one screen holds a DataTable of 20 rows, the least a host
  list can be.

"First frame" is the time from starting the process to the moment the terminal has received the
first row of the table (the name of the first host), interpreter start-up and imports included;
the process is then killed. The two run alternately, ``--rounds`` times each, so that a busy
machine slows both alike. Printed: the median and spread of each and the ratio (goal ≤ 1.3x).

    .venv/bin/python benchmarks/startup.py
    .venv/bin/python benchmarks/startup.py --rounds 21
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOSTS = 20
SIZE = (120, 40)
#: The first host's name: the text whose arrival on the terminal marks the first frame.
FIRST_ROW = "bench-host-01"
TIMEOUT_S = 30.0
GOAL = 1.3


def host_names() -> list[str]:
    return [f"bench-host-{n:02d}" for n in range(1, HOSTS + 1)]


def write_hosts_yaml(home: Path) -> None:
    """20 SSH hosts at documentation addresses (TEST-NET-3): nothing answers, nothing is reached."""
    lines = ["hosts:"]
    for n, name in enumerate(host_names(), 1):
        lines += [
            f"  {name}:",
            f"    hostname: 203.0.113.{n}",
            "    user: root",
            f"    rate_usd_per_hour: {0.5 + n / 10:.2f}",
        ]
    home.mkdir(parents=True, exist_ok=True)
    (home / "hosts.yaml").write_text("\n".join(lines) + "\n")


def isolated_env(base: Path) -> dict[str, str]:
    """The environment of both programs: gputui's folders and ``HOME`` inside ``base``."""
    folders = {
        "HOME": base / "home",
        "GPUTUI_HOME": base / "gputui-home",
        "GPUTUI_SSH_DIR": base / "dot-ssh",
        "GPUTUI_RUN_DIR": base / "run",
    }
    for folder in folders.values():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_hosts_yaml(folders["GPUTUI_HOME"])
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SSH_AUTH_SOCK", "TEXTUAL"))}
    return {
        **env,
        **{key: str(folder) for key, folder in folders.items()},
        "PYTHONPATH": path,
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
    }


def first_frame_s(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from starting ``argv`` in a fresh pseudo-terminal to ``FIRST_ROW`` on its screen."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=env, cwd=ROOT,
        start_new_session=True,
    )
    os.close(follower)
    seen = b""
    marker = FIRST_ROW.encode()
    try:
        while marker not in seen:
            left = TIMEOUT_S - (time.perf_counter() - started)
            if left <= 0:
                raise RuntimeError(f"{argv[-1]}: no first frame in {TIMEOUT_S:g} s")
            ready, _, _ = select.select([leader], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the program ended
                chunk = b""
            if not chunk:
                tail = seen.decode(errors="replace")[-400:]
                raise RuntimeError(f"{argv[-1]} ended before its first frame: {tail}")
            seen = (seen + chunk)[-4096:]  # the name may be split across two reads
        return time.perf_counter() - started
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        os.close(leader)


def run_minimal() -> None:
    """The baseline: one screen, one DataTable of 20 rows, as little as Textual allows."""
    from textual.app import App, ComposeResult
    from textual.screen import Screen
    from textual.widgets import DataTable

    class HostsScreen(Screen[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("host", "address", "rate")
            for n, name in enumerate(host_names(), 1):
                table.add_row(name, f"203.0.113.{n}", f"${0.5 + n / 10:.2f}/h")

    class MinimalApp(App[None]):
        def on_mount(self) -> None:
            self.push_screen(HostsScreen())

    MinimalApp().run()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11, help="runs of each program (median)")
    parser.add_argument("--child", choices=["minimal"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "minimal":
        run_minimal()
        return
    programs = {
        "gputui": [sys.executable, "-m", "tui.cli"],
        "minimal": [sys.executable, str(Path(__file__).resolve()), "--child", "minimal"],
    }
    times: dict[str, list[float]] = {name: [] for name in programs}
    with tempfile.TemporaryDirectory(prefix="gputui-startup-") as base:
        env = isolated_env(Path(base))
        for argv in programs.values():  # one unmeasured run each: the file cache is warm
            first_frame_s(argv, env)
        for _ in range(args.rounds):
            for name, argv in programs.items():
                times[name].append(first_frame_s(argv, env))
    print(
        f"first frame, {SIZE[0]}x{SIZE[1]} pseudo-terminal, {HOSTS} host profiles, "
        f"median of {args.rounds} alternating rounds"
    )
    labels = {
        "gputui": f"gputui (host list, {HOSTS} hosts)",
        "minimal": f"minimal Textual app (DataTable, {HOSTS} rows)",
    }
    for name, label in labels.items():
        runs = sorted(times[name])
        print(
            f"{label:<44}{statistics.median(runs) * 1000:>8.0f} ms"
            f"   (min {runs[0] * 1000:.0f}, max {runs[-1] * 1000:.0f})"
        )
    ratio = statistics.median(times["gputui"]) / statistics.median(times["minimal"])
    verdict = "within" if ratio <= GOAL else "over"
    print(f"{'ratio gputui / minimal':<44}{ratio:>8.2f}x  ({verdict} the {GOAL:g}x goal)")


if __name__ == "__main__":
    main()
