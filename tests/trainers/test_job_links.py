"""The trainer points its gputui job folder at its metrics and outputs (``GPUTUI_JOB_DIR``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from trainer_helpers import ROOT, write_yaml

from trainers.job_links import link_job_dir
from trainers.protocol.jobdir import JOB_DIR_ENV, METRICS_LINK, OUTPUT_LINK
from trainers.protocol.progress import read_lines

Config = Callable[..., dict[str, Any]]


def test_links_are_absolute_and_replace_stale_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = tmp_path / "job"
    job.mkdir()
    old = tmp_path / "old-run"
    os.symlink(old / "metrics.jsonl", job / METRICS_LINK)
    os.symlink(old, job / OUTPUT_LINK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(JOB_DIR_ENV, str(job))

    link_job_dir(Path("runs/../runs/new"))

    new = tmp_path / "runs" / "new"
    assert os.readlink(job / METRICS_LINK) == str(new / "metrics.jsonl")
    assert os.readlink(job / OUTPUT_LINK) == str(new)
    assert sorted(p.name for p in job.iterdir()) == [METRICS_LINK, OUTPUT_LINK]


def test_no_job_folder_no_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JOB_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    link_job_dir(Path("runs/x"))
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_refuses_the_links_only_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job"
    (job / OUTPUT_LINK).mkdir(parents=True)  # a real folder where the link should go
    link_job_dir(tmp_path / "run", str(job))
    assert os.readlink(job / METRICS_LINK) == str(tmp_path / "run" / "metrics.jsonl")
    assert (job / OUTPUT_LINK).is_dir() and not (job / OUTPUT_LINK).is_symlink()
    assert sorted(p.name for p in job.iterdir()) == [METRICS_LINK, OUTPUT_LINK]
    err = capsys.readouterr().err
    assert err.startswith(f"warning: cannot link {job / OUTPUT_LINK}") and err.count("\n") == 1


def test_a_run_started_as_a_job_links_its_folder(tmp_path: Path, tiny_config: Config) -> None:
    job = tmp_path / "job"
    job.mkdir()
    config = tiny_config("run", train={"max_steps": 3, "eval_every": None})
    path = write_yaml(tmp_path / "c.yaml", config)
    done = subprocess.run(
        [sys.executable, "-m", "trainers.lora", "--config", str(path)],
        cwd=ROOT,
        env={**os.environ, JOB_DIR_ENV: str(job)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = read_lines(job / METRICS_LINK)
    assert [line.event for line in lines][-1] == "done"
    assert [line.step for line in lines if line.event == "step"] == [1, 2, 3]
    assert (job / OUTPUT_LINK / "adapter" / "adapter_config.json").is_file()
    assert (job / OUTPUT_LINK).resolve() == Path(config["output_dir"]).resolve()
