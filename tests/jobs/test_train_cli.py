"""``gputui train`` and ``gputui resume`` against a real sshd host, with the real trainer."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml
from cli_helpers import gputui, wait_until_ended
from sshd import SshServer

from trainers.protocol.jobdir import METRICS_LINK, OUTPUT_LINK
from trainers.protocol.progress import read_lines
from transfer.hosts import HostProfile, HostStore

pytestmark = pytest.mark.usefixtures("job_env")
ROOT = Path(__file__).resolve().parents[2]
#: The host's environment activation: this machine's venv, as a GPU host's conda env would be.
ACTIVATE = Path(sys.executable).parent / "activate"
ENV_ACTIVATION = (f". {ACTIVATE}" if ACTIVATE.is_file()
                  else f"export PATH={Path(sys.executable).parent}:$PATH")

TINY = {
    "output_dir": "runs/tiny",
    "seed": 0,
    "model": {"arch": {"hidden_size": 32, "intermediate_size": 64, "num_layers": 1,
                       "num_heads": 2, "num_kv_heads": 1}},
    "tokenizer": {"train": {"vocab_size": 400}},
    "data": {"path": "configs/data/chat.jsonl", "seq_len": 64},
    "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
    "train": {"batch_size": 4, "max_steps": 4, "cpu_threads": 1},
    "checkpoint": {"every_steps": None, "every_minutes": None},
}




@pytest.fixture
def host(sshd_server: SshServer, tmp_path: Path) -> HostProfile:
    sshd_server.trust()
    profile = sshd_server.profile(
        "gpu1", workdir=str(tmp_path / "host-work"), env_activation=ENV_ACTIVATION
    )
    HostStore().upsert(profile)
    return profile


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small training project: the trainer package, the chat data and a tiny config."""
    folder = tmp_path / "project"
    shutil.copytree(ROOT / "trainers", folder / "trainers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "configs" / "data").mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "data" / "chat.jsonl", folder / "configs" / "data")
    (folder / "configs" / "tiny.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    (folder / ".gitignore").write_text("runs/\n__pycache__/\n")
    monkeypatch.chdir(folder)
    return folder


def test_train_pushes_the_project_and_runs_the_trainer_from_the_copy(
    host: HostProfile, project: Path, jobs_root: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = tmp_path / "other-work"  # --workdir: pushed to and run in, instead of the host's
    code, out, err = gputui(capsys, "train", "gpu1", "configs/tiny.yaml", "--set",
                            "train.max_steps=3", "--workdir", str(work))
    assert code == 0, err
    job = out.strip()
    assert out == job + "\n" and job.startswith("train-tiny-")
    assert "pushed " in err and f"gputui logs gpu1 {job} -f" in err
    assert (work / "configs" / "tiny.yaml").read_bytes() == (
        project / "configs" / "tiny.yaml"
    ).read_bytes()

    found = wait_until_ended(capsys, job, timeout=90)
    log = (jobs_root / job / "log").read_text()
    assert found["state"] == "succeeded", log
    assert found["command"] == ("python -m trainers.lora --config configs/tiny.yaml "
                                "--set train.max_steps=3")
    assert found["workdir"] == str(work)
    assert [line for line in log.splitlines() if line.startswith("step ")][-1].startswith(
        "step 3/3"
    )
    # The pushed copy ran (not this checkout), and it linked the job folder to its run.
    assert list((work / "trainers" / "__pycache__").glob("lora.*.pyc"))
    assert not (project / "runs").exists()
    assert read_lines(jobs_root / job / METRICS_LINK)[-1].event == "done"
    assert os.readlink(jobs_root / job / OUTPUT_LINK) == str(work / "runs" / "tiny")
    assert (work / "runs" / "tiny" / "adapter" / "adapter_model.safetensors").is_file()
    assert not Path(host.workdir).exists()


def test_train_refuses_bad_configs_before_pushing(
    host: HostProfile, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("{}\n")
    cases = [
        (["configs/nope.yaml"], f"gputui: no config file configs/nope.yaml in {project}\n"),
        ([str(outside)], f"gputui: {outside} is outside this folder; run from the project "
                         "folder, or pass --no-push with a path on the host\n"),
        (["configs/tiny.yaml", "--set", "train.batch_size=0"],
         "gputui: configs/tiny.yaml: train.batch_size: Input should be greater than 0 "
         "(got 0) (from --set)\n"),
    ]
    for argv, message in cases:
        code, out, err = gputui(capsys, "train", "gpu1", *argv)
        assert (code, out, err) == (2, "", message)
    assert not Path(host.workdir).exists()
    code, out, err = gputui(capsys, "train", "nohost", "configs/tiny.yaml")
    assert code != 0 and out == "" and err.count("\n") == 1 and "nohost" in err


def test_a_stopped_job_is_offered_a_resume_that_repeats_it(
    host: HostProfile, jobs_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A job that, like the trainer, exits 143 on SIGTERM the first time and finishes the next.
    script = (
        "if [ -e first-done ]; then echo resumed; exit 0; fi; : > first-done; "
        "trap 'echo saved; exit 143' TERM; echo ready; while :; do sleep 0.05; done"
    )
    Path(host.workdir).mkdir()
    code, out, _ = gputui(capsys, "run", "gpu1", "--name", "spot run", "--", script)
    job = out.strip()
    log = jobs_root / job / "log"
    deadline = time.monotonic() + 10
    while not log.exists() or "ready" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline
        time.sleep(0.05)

    code, out, _ = gputui(capsys, "stop", "gpu1", job, "--grace", "5")
    assert code == 0
    stopped, hint = out.splitlines()
    assert stopped.startswith(f"{job}: stopped (SIGTERM; exit 143")
    assert hint == f"resume with: gputui resume gpu1 {job}"
    code, out, _ = gputui(capsys, "jobs", "gpu1")
    listed = out.splitlines()[-1]
    assert listed.startswith(f"{job} ended stopped (SIGTERM; exit 143")
    assert listed.endswith(f"; resume with: gputui resume gpu1 {job}")

    code, out, err = gputui(capsys, "resume", "gpu1", job)
    assert code == 0, err
    again = out.strip()
    assert again != job and f"resumed {job} as {again} on gpu1" in err
    found = wait_until_ended(capsys, again, timeout=10)
    old = next(j for j in json.loads(gputui(capsys, "jobs", "gpu1", "--json")[1])
               if j["id"] == job)
    assert (found["state"], found["name"]) == ("succeeded", "spot run")
    assert (found["command"], found["workdir"]) == (old["command"], old["workdir"])
    assert (jobs_root / again / "log").read_text() == "resumed\n"
    # Taken up: no more hint; and a finished job has nothing to resume.
    code, out, _ = gputui(capsys, "jobs", "gpu1")
    assert "resume with" not in out
    code, out, err = gputui(capsys, "resume", "gpu1", again)
    assert (code, out) == (1, "")
    assert err == f"gputui: {again} on gpu1 is succeeded (exit 0): nothing to resume\n"
