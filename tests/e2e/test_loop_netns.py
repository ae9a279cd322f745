"""The whole loop across a real network boundary, through gputui's CLI only.

Two hosts, each a network namespace with its own sshd (and, on A, its own tmux server), reached
over veth links with private addresses. The test imports them from an ssh config, trusts their
keys, pushes the demo project to both, trains on A, cuts A's link for a few seconds mid-run,
stops the job (SIGTERM → checkpoint → exit 143), resumes it to the end, pulls the run and loads
the adapter with peft. Runs as root (CI does); elsewhere it is skipped, saying why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netns_hosts import NetnsHost, NetnsLab, NetnsUnavailable
from waiting import until

from trainers.checkpoint import MANIFEST, step_folder_name
from trainers.protocol.jobdir import METRICS_LINK, OUTPUT_LINK
from trainers.protocol.progress import dedupe_steps, read_lines
from transfer.jobs.host import JOBS_ROOT_ENV
from transfer.jobs.launch import TMUX_SOCKET_ENV

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
GPUTUI = [str(Path(sys.executable).with_name("gputui"))]
#: A's Python environment: this machine's venv, as a GPU host's conda env would be.
ACTIVATE = Path(sys.executable).with_name("activate")
ENV_ACTIVATION = (f". {ACTIVATE}" if ACTIVATE.is_file()
                  else f"export PATH={Path(sys.executable).parent}:$PATH")
#: Long enough to live through the link cut and a stop; checkpoints every few seconds.
OVERRIDES = ("train.max_steps=200", "checkpoint.every_steps=25", "train.cpu_threads=1")
MAX_STEPS = 200
CUT_S = 5.0
STEP_LINE = re.compile(r"^step (\d+)/(\d+)  loss ")


@pytest.fixture
def lab(tmp_path: Path, client_key: Path) -> Iterator[NetnsLab]:
    lab = NetnsLab(tmp_path / "lab", client_key)
    try:
        lab.check_available()
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces cannot be created here: {exc}")
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def tmux_socket() -> Iterator[Path]:
    """A short socket path (they have a length limit); the server dies with A's namespace."""
    folder = Path(tempfile.mkdtemp(prefix="gte"))
    yield folder / "s"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """The demo project as a person has it: the trainer package and configs/ with its data."""
    folder = tmp_path / "demo"
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "trainers", folder / "trainers", ignore=skip)
    shutil.copytree(ROOT / "configs", folder / "configs", ignore=skip)
    (folder / ".gitignore").write_text("runs/\n__pycache__/\n")
    return folder


class Cli:
    """Runs ``gputui`` as a separate program, from the demo folder, as a person would."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env

    def __call__(self, *argv: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [*GPUTUI, *argv], cwd=self.cwd, env=self.env, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, f"gputui {' '.join(argv)} failed:\n{done.stderr}"
        return done.stdout

    def job(self, host: str, job: str) -> dict[str, Any]:
        return next(j for j in json.loads(self("jobs", host, "--json")) if j["id"] == job)


class Follower:
    """``gputui logs HOST JOB -f`` in the background; its lines as they arrive."""

    def __init__(self, cli: Cli, host: str, job: str) -> None:
        self.process = subprocess.Popen(
            [*GPUTUI, "logs", host, job, "-f"], cwd=cli.cwd, env=cli.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        )
        self.lines: list[str] = []
        self.arrived: list[float] = []  # Unix time each line of ``lines`` came in
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines,
                                                      self.arrived)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.errors, [])),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str], times: list[float]) -> None:
        for line in stream:
            times.append(time.time())
            into.append(line.rstrip("\n"))

    def steps(self) -> list[int]:
        return [int(m.group(1)) for line in list(self.lines) if (m := STEP_LINE.match(line))]

    def reached(self, step: int) -> bool:
        """True once the log shows ``step``; fails at once if the follower ended before."""
        if self.last_step() >= step:
            return True
        if self.process.poll() is not None:
            time.sleep(0.2)  # let the readers take the last lines
            raise AssertionError(f"the follower ended before step {step}\n{self.context()}")
        return False

    def last_step(self) -> int:
        steps = self.steps()
        return steps[-1] if steps else 0

    def finish(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def context(self) -> str:
        """What a failure message shows: the last lines followed and everything on stderr."""
        return "\n".join(["followed (last 20):", *self.lines[-20:], "stderr:", *self.errors])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def write_ssh_config(path: Path, hosts: list[NetnsHost], key: Path) -> Path:
    blocks = [
        f"Host {h.name}\n    HostName {h.address}\n    User root\n    Port 22\n"
        f"    IdentityFile {key}\n"
        for h in hosts
    ]
    path.write_text("\n".join(blocks))
    return path


def test_the_loop_survives_a_link_cut_and_a_preemption(
    lab: NetnsLab, demo: Path, tmp_path: Path, client_key: Path, tmux_socket: Path
) -> None:
    a = lab.add_host("A")
    b = lab.add_host("B")
    work_a, work_b = tmp_path / "work-a", tmp_path / "work-b"
    jobs_root = tmp_path / "host-jobs"
    cli = Cli(demo, {**os.environ, JOBS_ROOT_ENV: str(jobs_root),
                     TMUX_SOCKET_ENV: str(tmux_socket)})

    # Import both hosts from an ssh config and trust the keys they present.
    config = write_ssh_config(tmp_path / "ssh_config", [a, b], client_key)
    out = cli("hosts", "import", "--ssh-config", str(config), "--all")
    assert out.splitlines() == [f"imported A (root@{a.address})", f"imported B (root@{b.address})"]
    for host in (a, b):
        assert host.server is not None
        out = cli("hosts", "trust", host.name, "--yes")
        assert host.server.host_key_fingerprint() in out and "trusted; stored in" in out
    # What an ssh config does not say: each host's work folder, and A's Python environment.
    for host, work, extra in ((a, work_a, ["--env-activation", ENV_ACTIVATION]),
                              (b, work_b, [])):
        cli("hosts", "add", host.name, "--replace", "--host", host.address, "--user", "root",
            "--key", str(client_key), "--workdir", str(work), *extra)

    # Push the demo project to both.
    for host, work in ((a, work_a), (b, work_b)):
        out = cli("push", host.name, "--verify")
        assert out.startswith("pushed ") and "verified" in out
        assert (work / "configs" / "dev.yaml").read_bytes() == (
            demo / "configs" / "dev.yaml").read_bytes()
    assert sorted(p.relative_to(work_a) for p in work_a.rglob("*")) == sorted(
        p.relative_to(work_b) for p in work_b.rglob("*"))

    # Train on A (train pushes again: nothing changed) and follow the log from here.
    settings = [arg for item in OVERRIDES for arg in ("--set", item)]
    job = cli("train", "A", "configs/dev.yaml", *settings).strip()
    follower = Follower(cli, "A", job)
    try:
        until(lambda: follower.reached(10), 120, what="step 10 in the followed log",
              context=follower.context, interval=0.1)

        # Cut A's link for a few seconds while it trains, then bring it back.
        down_at = time.time()
        a.link(up=False)
        try:
            with pytest.raises(OSError):  # the cut is real: A cannot be reached
                socket.create_connection((a.address, 22), timeout=1).close()
            time.sleep(CUT_S)
        finally:
            a.link(up=True)
        up_at = time.time()
        seen_before_up = follower.last_step()
        until(lambda: follower.reached(seen_before_up + 15), 90,
              what="the followed log to go on after the link came back",
              context=follower.context, interval=0.1)
        status = cli.job("A", job)
        assert status["state"] == "running", status

        # Stop: SIGTERM, the trainer commits a checkpoint and exits 143.
        out = cli("stop", "A", job, "--grace", "60")
        stopped_line, hint = out.splitlines()
        assert stopped_line.startswith(f"{job}: stopped (SIGTERM; exit 143")
        assert hint == f"resume with: gputui resume A {job}"
        assert follower.finish(timeout=30) == 0, "\n".join(follower.errors)
    finally:
        follower.kill()

    status = cli.job("A", job)
    assert (status["state"], status["exit_code"]) == ("stopped", 143)
    assert f"resume with: gputui resume A {job}" in cli("jobs", "A")
    # The job trained through the cut: progress lines were written while the link was down.
    first_run = read_lines(jobs_root / job / METRICS_LINK)
    in_cut = [line.step for line in first_run
              if line.event == "step" and down_at + 1 < line.time < up_at - 1]
    assert in_cut, "no training step was written while the link was down"
    # The tail felt the cut (nothing came through it) and then delivered what was written in it.
    assert not [t for t in follower.arrived if down_at + 1 < t < up_at]
    arrival = {int(m.group(1)): t for line, t in zip(follower.lines, follower.arrived, strict=True)
               if (m := STEP_LINE.match(line))}
    assert all(arrival[step] > up_at for step in in_cut)
    # The followed log is the job's log exactly: no gap, no line twice, steps consecutive.
    log = (jobs_root / job / "log").read_text().splitlines()
    assert follower.lines == log
    steps = follower.steps()
    assert steps == list(range(1, len(steps) + 1)) and steps[-1] < MAX_STEPS
    assert follower.errors[-1].startswith(f"gputui: {job} stopped (SIGTERM; exit 143")
    # A committed checkpoint of the step it stopped at.
    preempted = [line for line in first_run if line.event == "preempted"]
    assert len(preempted) == 1 and preempted[0].reason == "SIGTERM"
    stop_step = preempted[0].step
    assert stop_step == steps[-1]
    run_dir = Path(os.readlink(jobs_root / job / OUTPUT_LINK))
    assert run_dir == work_a / "runs" / "dev"
    assert (run_dir / "checkpoints" / step_folder_name(stop_step) / MANIFEST).is_file()

    # Resume: the same command, a new job that continues from the checkpoint to the end.
    again = cli("resume", "A", job).strip()
    assert again != job
    out = cli("logs", "A", again, "-f", timeout=240)
    assert f"resume #1  from step {stop_step}/{MAX_STEPS}" in out
    assert out.splitlines()[-1].startswith(f"done  step {MAX_STEPS}/{MAX_STEPS}")
    status = cli.job("A", again)
    assert (status["state"], status["exit_code"]) == ("succeeded", 0)
    assert "resume with" not in cli("jobs", "A")
    curve = dedupe_steps(read_lines(jobs_root / again / METRICS_LINK))
    assert [line.step for line in curve] == list(range(1, MAX_STEPS + 1))
    assert curve[-1].loss is not None and curve[0].loss is not None
    assert curve[-1].loss < curve[0].loss - 2

    # Pull the run and load the adapter on the base model rebuilt from the config.
    local = tmp_path / "pulled"
    out = cli("pull", "A", "runs/dev", str(local), "--verify")
    assert out.startswith("pulled ") and "verified" in out
    check_adapter(local, demo / "configs" / "dev.yaml", demo / "configs" / "data" / "chat.jsonl")


def check_adapter(run: Path, config_path: Path, data: Path) -> None:
    """The pulled adapter loads with peft on a freshly built base and has learnt the data."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import PreTrainedTokenizerFast

    from trainers.config import load_config
    from trainers.tiny import build_llama

    config = load_config(config_path, list(OVERRIDES))
    assert config.model.arch is not None
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(run / "adapter"))
    torch.manual_seed(config.seed)
    base = build_llama(config.model.arch, len(tokenizer), config.data.seq_len).eval()
    saved_base = load_file(str(run / "base" / "model.safetensors"))
    rebuilt = base.state_dict()
    assert all(torch.equal(rebuilt[name], tensor) for name, tensor in saved_base.items())

    conversations = [json.loads(line)["messages"] for line in data.read_text().splitlines()[:32]]
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    batch = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]

    def mean_loss(model: Any) -> float:
        losses = []
        with torch.no_grad():
            for ids in batch:
                tensor = torch.tensor([ids])
                losses.append(float(model(input_ids=tensor, labels=tensor).loss))
        return sum(losses) / len(losses)

    before = mean_loss(base)
    adapted = PeftModel.from_pretrained(base, str(run / "adapter")).eval()
    lora_b = [p for name, p in adapted.named_parameters() if "lora_B" in name]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)
    after = mean_loss(adapted)
    assert after < before - 1.0, (before, after)
