"""``gputui push``/``pull`` against rsync, over the same sshd with the same key.

    python benchmarks/transfer.py [--quick] [--rounds N] [--only push,pull,tree,noop]

Starts its own OpenSSH server on 127.0.0.1 (the test suite's helper), makes the data, then for
each case runs gputui and ``rsync -a`` (its defaults, over ``ssh`` with the same key and a
known_hosts file) in alternation, several rounds, and prints the median wall time of each and
the ratio gputui/rsync. gputui is timed three ways:

- ``gputui``: the installed command as a person runs it, a fresh process each time, served by
  its connection keeper (started by an untimed first command, as the first push of a session
  starts it): the SSH connection and a shell on the host are kept between commands;
- ``no keeper``: the command with ``GPUTUI_KEEP_S=0``: its own interpreter start, imports and
  connection each time (what a command costs when no keeper runs);
- ``in the app``: the engine inside one long-lived process, a fresh connection each time.

Peak memory is the max RSS of the keeper (where the command's transfers run) and of the
no-keeper command. Cases: push of one 1 GiB file, pull of it, first push of 10,000 files of
10 KB, and a re-push of that tree with nothing changed. ``--quick`` uses 256 MiB and 2,000 files.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from sshd import SshServer, generate_key  # noqa: E402

GPUTUI = [str(Path(sys.executable).with_name("gputui"))]
if not Path(GPUTUI[0]).exists():
    GPUTUI = [sys.executable, "-m", "tui.cli"]


def make_big_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = os.urandom(1 << 20)
    with path.open("wb") as f:
        for index in range(size >> 20):
            f.write(chunk[index % 97 :] + chunk[: index % 97])  # no two MiB alike


def make_tree(root: Path, files: int, size: int) -> None:
    per_folder = 100
    for index in range(files):
        folder = root / f"d{index // per_folder:03d}"
        if index % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index % per_folder:03d}.dat").write_bytes(os.urandom(size))


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and the peak RSS (bytes) of the command's own process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    out = process.stdout.read() if process.stdout else b""
    err = process.stderr.read() if process.stderr else b""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed ({process.returncode}):\n"
            f"{out.decode(errors='replace')}{err.decode(errors='replace')}"
        )
    return elapsed, usage.ru_maxrss * 1024


class Bench:
    def __init__(self, work: Path, server: SshServer, key: Path) -> None:
        self.work = work
        self.server = server
        self.key = key
        home = work / "gputui-home"
        home.mkdir()
        (work / "dot-ssh").mkdir()
        known = work / "known_hosts"
        known.write_text(server.known_hosts_line() + "\n")
        (home / "known_hosts").write_text(server.known_hosts_line() + "\n")
        (home / "hosts.yaml").write_text(
            "hosts:\n"
            "  bench:\n"
            f"    hostname: {server.host}\n"
            f"    port: {server.port}\n"
            f"    user: {server.user}\n"
            f"    identity_file: {key}\n"
            f"    workdir: {work / 'remote'}\n"
        )
        self.env = {
            **os.environ,
            "GPUTUI_HOME": str(home),
            "GPUTUI_SSH_DIR": str(work / "dot-ssh"),
            # Bytecode cached as on any installed copy (the first, untimed run writes it).
            "PYTHONPYCACHEPREFIX": str(work / "pycache"),
            "GPUTUI_RUN_DIR": str(work / "run"),
        }
        self.cold_env = {**self.env, "GPUTUI_KEEP_S": "0"}
        self.env.pop("SSH_AUTH_SOCK", None)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.ssh = (
            f"ssh -i {key} -p {server.port} -o UserKnownHostsFile={known} "
            "-o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes"
        )
        self.at = f"{server.user}@{server.host}"

    def gputui(self, *args: str) -> list[str]:
        return [*GPUTUI, *args]

    def keeper_peak(self) -> int:
        """The keeper's peak RSS in bytes (VmHWM), 0 when none runs."""
        for log in (self.work / "run").glob("keeper-*.log"):
            found = re.search(r"keeper (\d+) on", log.read_text())
            if found is None:
                continue
            try:
                status = Path(f"/proc/{found.group(1)}/status").read_text()
            except FileNotFoundError:
                continue
            peak = re.search(r"VmHWM:\s+(\d+) kB", status)
            return int(peak.group(1)) * 1024 if peak else 0
        return 0

    def stop_keeper(self) -> None:
        subprocess.run([sys.executable, "-c", "from transfer.keeper import client; client.stop()"],
                       env=self.env, check=False)

    def rsync(self, source: str, destination: str) -> list[str]:
        return ["rsync", "-a", "-e", self.ssh, source, destination]


class AppWorker:
    """gputui's engine in one long-lived process, a fresh connection per run: what a push or
    pull from the running app costs (no interpreter start, no imports)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, direction: str, local: str, remote: str) -> tuple[float, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{direction}\t{local}\t{remote}\n")
        self.process.stdin.flush()
        elapsed, peak = self.process.stdout.readline().split()
        return float(elapsed), int(peak)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def serve() -> int:
    """The app worker's side: one request per line, ``elapsed peak_rss`` back."""
    import asyncio
    import resource

    from transfer.connect import open_link
    from transfer.hosts import HostStore
    from transfer.sync.engine import Sync, SyncRequest

    host = HostStore().get("bench")

    async def one(direction: str, local: str, remote: str) -> None:
        async with open_link(host) as link:
            result = await Sync(link, SyncRequest(direction, local, remote)).run()  # type: ignore[arg-type]
        if not result.ok:
            raise SystemExit(f"{direction} failed: {result.problems}")

    for line in sys.stdin:
        direction, local, remote = line.rstrip("\n").split("\t")
        start = time.perf_counter()
        asyncio.run(one(direction, local, remote))
        elapsed = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(f"{elapsed:.4f} {peak}", flush=True)
    return 0


TOOLS = ("gputui", "gputui-cold", "gputui-app", "rsync")


def run_case(
    name: str,
    rounds: int,
    bench: Bench,
    app: AppWorker,
    runs: dict[str, list[str] | tuple[str, str, str]],
    reset: Callable[[str], None],
) -> dict[str, float]:
    """Alternate the tools (rotating who goes first), several rounds; print the medians."""
    times: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    peaks: dict[str, int] = {"gputui": 0, "gputui-cold": 0}
    for round_index in range(rounds):
        shift = round_index % len(TOOLS)
        for tool in TOOLS[shift:] + TOOLS[:shift]:
            reset(tool)
            run = runs[tool]
            if isinstance(run, tuple):
                elapsed, _ = app.run(*run)
            else:
                env = bench.cold_env if tool == "gputui-cold" else bench.env
                elapsed, rss = timed(run, env)
                if tool in peaks:
                    peak = bench.keeper_peak() if tool == "gputui" else rss
                    peaks[tool] = max(peaks[tool], peak)
            times[tool].append(elapsed)
    medians = {tool: statistics.median(values) for tool, values in times.items()}
    rsync = medians["rsync"]
    columns = [f"rsync {rsync:5.2f} s"] + [
        f"{label} {medians[tool]:5.2f} s ratio {medians[tool] / rsync:4.2f}"
        for tool, label in (("gputui", "gputui"), ("gputui-cold", "no keeper"),
                            ("gputui-app", "in the app"))
    ]
    print(f"{name:<30} " + " | ".join(columns), flush=True)
    for tool in TOOLS:
        print(f"    {tool:<11} rounds: {' '.join(f'{t:.2f}' for t in times[tool])}", flush=True)
    medians.update({f"peak-{tool}": peak for tool, peak in peaks.items()})
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256 MiB and 2,000 files")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per case (5; quick 3)")
    parser.add_argument("--only", default="push,pull,tree,noop", help="cases to run")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve()
    if shutil.which("rsync") is None:
        print("rsync is not installed", file=sys.stderr)
        return 1
    rounds = args.rounds or (3 if args.quick else 5)
    big_size = (256 if args.quick else 1024) << 20
    tree_files = 2000 if args.quick else 10_000
    cases = set(args.only.split(","))

    work = Path(tempfile.mkdtemp(prefix="gputui-bench-"))
    key = generate_key(work / "key" / "id_ed25519")
    server = SshServer(root=work / "sshd", client_key=key).start()
    try:
        bench = Bench(work, server, key)
        local = work / "local"
        remote = work / "remote"
        print(f"data: one {big_size >> 20} MiB file, {tree_files} files of 10 KB; "
              f"{rounds} rounds, alternating; sshd on 127.0.0.1:{server.port}", flush=True)
        make_big_file(local / "big" / "big.bin", big_size)
        make_tree(local / "tree", tree_files, 10_000)
        remote.mkdir()
        timed(bench.gputui("push", "bench", str(local / "tree"), str(remote / "warm-up"),
                           "--dry-run"), bench.env)
        app = AppWorker(bench.env)
        results = []
        try:
            big_src = str(local / "big" / "big.bin")
            pushed = {t: remote / f"big-{t}" for t in TOOLS}

            def reset_push(tool: str) -> None:
                shutil.rmtree(pushed[tool], ignore_errors=True)
                pushed[tool].mkdir(parents=True)

            if "push" in cases or "pull" in cases:
                results.append(run_case(
                    f"push {big_size >> 20} MiB file", rounds, bench, app,
                    {
                        "gputui": bench.gputui("push", "bench", big_src,
                                               str(pushed["gputui"]) + "/"),
                        "gputui-cold": bench.gputui("push", "bench", big_src,
                                                    str(pushed["gputui-cold"]) + "/"),
                        "gputui-app": ("push", big_src, str(pushed["gputui-app"]) + "/"),
                        "rsync": bench.rsync(big_src, f"{bench.at}:{pushed['rsync']}/"),
                    },
                    reset_push,
                ))
            if "pull" in cases:
                pulled = {t: work / f"pulled-{t}" for t in TOOLS}
                source = str(pushed["gputui"] / "big.bin")

                def reset_pull(tool: str) -> None:
                    shutil.rmtree(pulled[tool], ignore_errors=True)
                    pulled[tool].mkdir()

                results.append(run_case(
                    f"pull {big_size >> 20} MiB file", rounds, bench, app,
                    {
                        "gputui": bench.gputui("pull", "bench", source,
                                               str(pulled["gputui"]) + "/"),
                        "gputui-cold": bench.gputui("pull", "bench", source,
                                                    str(pulled["gputui-cold"]) + "/"),
                        "gputui-app": ("pull", str(pulled["gputui-app"]) + "/", source),
                        "rsync": bench.rsync(f"{bench.at}:{source}", f"{pulled['rsync']}/"),
                    },
                    reset_pull,
                ))
            trees = {t: remote / f"tree-{t}" for t in TOOLS}
            tree_src = str(local / "tree")
            tree_runs: dict[str, list[str] | tuple[str, str, str]] = {
                "gputui": bench.gputui("push", "bench", tree_src, str(trees["gputui"])),
                "gputui-cold": bench.gputui("push", "bench", tree_src, str(trees["gputui-cold"])),
                "gputui-app": ("push", tree_src, str(trees["gputui-app"])),
                "rsync": bench.rsync(tree_src + "/", f"{bench.at}:{trees['rsync']}/"),
            }
            if "tree" in cases or "noop" in cases:

                def reset_tree(tool: str) -> None:
                    shutil.rmtree(trees[tool], ignore_errors=True)

                results.append(run_case(
                    f"push {tree_files} x 10 KB (first)", rounds, bench, app, tree_runs,
                    reset_tree,
                ))
            if "noop" in cases:
                results.append(run_case(
                    f"re-push {tree_files} x 10 KB (no-op)", rounds, bench, app, tree_runs,
                    lambda tool: None,
                ))
        finally:
            app.close()
            bench.stop_keeper()
        keeper = max((r["peak-gputui"] for r in results), default=0)
        cold = max((r["peak-gputui-cold"] for r in results), default=0)
        print(f"gputui peak memory over all runs (max RSS): keeper {keeper / 2**20:.1f} MB, "
              f"command without keeper {cold / 2**20:.1f} MB", flush=True)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
