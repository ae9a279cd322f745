"""Make the README tour's screenshots, docs/tour/*.svg, with ``gputui --headless --screenshot``.

It plays the demo loop on the built-in ``local`` host, as ``make run`` sets it up, inside a
sandbox: its own ``HOME`` (so ``~/gputui-demo``, ``~/.gputui/jobs`` and ``~/.config/gputui`` are
private), its own tmux server, and three example rented hosts that are listed but never contacted.
Nothing of yours is read or changed. Each screenshot is one run of the app, as a person would
start it; the training runs between them as a detached job, as it would between two sessions.

    make tour        # or: .venv/bin/python docs/tour/make_tour.py [--out DIR]

Takes a minute or two: it waits for the dev training to be well under way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tui.cli.demo import demo_settings

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
EXAMPLE_HOSTS = """\
hosts:
  a100-spot:
    hostname: 203.0.113.7
    user: ubuntu
    provider: lambda
    rate_usd_per_hour: 1.29
    workdir: /workspace/proj
    tags: [a100, spot]
  h100-pod:
    hostname: h100.example.com
    user: root
    port: 22022
    provider: runpod
    rate_usd_per_hour: 2.99
    tags: [h100]
  home-4090:
    hostname: 192.168.1.20
    provider: home
    tags: ["4090"]
"""
WIDE = "150x44"
MID_TRAINING_STEP = 120  # of configs/dev.yaml's 300


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder for the SVGs ({OUT})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sandbox = Path(tempfile.mkdtemp(prefix="gputui-tour-"))
    socket_dir = Path(tempfile.mkdtemp(prefix="gtt"))  # tmux sockets have a short length limit
    env = {
        **os.environ,
        "HOME": str(sandbox),
        "GPUTUI_HOME": str(sandbox / ".config" / "gputui"),
        "GPUTUI_TMUX_SOCKET": str(socket_dir / "s"),
    }
    env.pop("GPUTUI_HOST_JOBS_DIR", None)
    env.update(demo_settings())  # the local host of `gputui --demo`, for the CLI steps too
    tour = Tour(env, args.out)
    try:
        tour.run()
    finally:
        tour.clean_up()
        subprocess.run(["tmux", "-S", str(socket_dir / "s"), "kill-server"],
                       capture_output=True, check=False)
        shutil.rmtree(socket_dir, ignore_errors=True)
        shutil.rmtree(sandbox, ignore_errors=True)
    return 0


class Tour:
    def __init__(self, env: dict[str, str], out: Path) -> None:
        self.env = env
        self.out = out
        self.home = Path(env["HOME"])
        self.job: str | None = None

    def gputui(self, *args: str) -> str:
        """Run the CLI from the checkout, as ``make run`` does; its stdout."""
        done = subprocess.run([sys.executable, "-m", "tui.cli", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, check=False, timeout=600)
        if done.returncode:
            raise SystemExit(f"gputui {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stderr.strip()}")
        return done.stdout

    def shoot(self, name: str, *, keys: str = "", size: str = WIDE, demo: bool = True) -> None:
        path = self.out / f"{name}.svg"
        args = ["--headless", "--size", size, "--screenshot", str(path)]
        if demo:
            args.insert(0, "--demo")
        if keys:
            args += ["--keys", keys]
        self.gputui(*args)
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")

    def run(self) -> None:
        hosts = Path(self.env["GPUTUI_HOME"]) / "hosts.yaml"
        hosts.parent.mkdir(parents=True, mode=0o700)
        hosts.write_text(EXAMPLE_HOSTS)
        hosts.chmod(0o600)
        self.shoot("hosts", keys="wait:2000", size="120x24", demo=False)  # local's load fills in
        self.shoot("push", keys="p")  # the push ends before the screenshot
        self.shoot("new-job", keys="n,wait:500")
        # Launched from the CLI so that the job outlives the screenshots, like any job.
        self.job = self.gputui("train", "local", "configs/dev.yaml").strip()
        self.wait_for_step(MID_TRAINING_STEP)
        self.shoot("dashboard", keys="wait:3000")
        self.shoot("log", keys="wait:1000,enter,wait:1500")
        self.gputui("stop", "local", self.job)
        self.shoot("stopped", keys="wait:2000")

    def wait_for_step(self, step: int, timeout_s: float = 600.0) -> None:
        metrics = self.home / "gputui-demo" / "runs" / "dev" / "metrics.jsonl"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if last_step(metrics) >= step:
                return
            time.sleep(1.0)
        raise SystemExit(f"the dev training did not reach step {step} in {timeout_s:.0f} s")

    def clean_up(self) -> None:
        if self.job is not None:
            subprocess.run([sys.executable, "-m", "tui.cli", "stop", "local", self.job,
                            "--grace", "0"], cwd=ROOT, env=self.env, capture_output=True,
                           check=False)


def last_step(metrics: Path) -> int:
    try:
        lines = metrics.read_text().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("step"), int):
            return int(data["step"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
