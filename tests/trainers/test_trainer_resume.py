"""Exact resume: a run stopped by SIGTERM (or a crash mid-save) and started again ends bit-identical
to a run that was never stopped: every parameter ``torch.equal`` and the same loss curve."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from trainer_helpers import ROOT, tiny_config_for, write_yaml

from trainers import checkpoint as ckpt
from trainers.config import parse_config
from trainers.loop import EXIT_DONE, EXIT_PREEMPTED, Trainer
from trainers.preemption import StopFlag
from trainers.protocol.progress import ProgressLine, dedupe_steps, read_lines

STEPS = 40
STOP_AT = 8


def train(config: dict[str, Any], flag: StopFlag | None = None) -> int:
    return Trainer(parse_config(config), echo=io.StringIO(), flag=flag).run()


def lines(output: Path) -> list[ProgressLine]:
    return read_lines(output / "metrics.jsonl")


def losses(output: Path) -> list[tuple[int, float | None]]:
    return [(line.step, line.loss) for line in dedupe_steps(lines(output))]


def tensors(output: Path) -> dict[str, torch.Tensor]:
    """Every parameter of the run: the trained adapter and the base it was trained on."""
    found = {}
    for part, file in (
        ("adapter", "adapter/adapter_model.safetensors"),
        ("base", "base/model.safetensors"),
    ):
        found.update({f"{part}.{name}": value for name, value in load_file(output / file).items()})
    return found


def assert_same_parameters(one: Path, other: Path) -> None:
    left, right = tensors(one), tensors(other)
    assert left.keys() == right.keys()
    different = [name for name in left if not torch.equal(left[name], right[name])]
    assert different == []


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run A: STEPS steps without a stop."""
    folder = tmp_path_factory.mktemp("straight")
    cache = tmp_path_factory.getbasetemp() / "resume-cache"
    config = tiny_config_for(folder / "out", cache, train={"max_steps": STEPS})
    assert train(config) == EXIT_DONE
    return folder / "out"


def test_straight_run_learns(straight: Path) -> None:
    curve = [loss for _, loss in losses(straight) if loss is not None]
    assert len(curve) == STEPS
    assert sum(curve[-5:]) / 5 < curve[0] - 1.0


def test_sigterm_then_same_command_resumes_bit_identical(
    straight: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = tmp_path_factory.getbasetemp() / "resume-cache"
    output = tmp_path / "out"
    config = write_yaml(
        tmp_path / "run.yaml", tiny_config_for(output, cache, train={"max_steps": STEPS})
    )
    command = [sys.executable, "-m", "trainers.lora", "--config", str(config)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert first.stdout is not None
    for text in first.stdout:
        if text.startswith(f"step {STOP_AT}/"):
            first.send_signal(signal.SIGTERM)
            break
    rest, _ = first.communicate(timeout=120)
    assert first.returncode == EXIT_PREEMPTED, rest

    stopped = lines(output)
    preempted = [line for line in stopped if line.event == "preempted"]
    assert len(preempted) == 1 and preempted[0].reason == "SIGTERM"
    stop_step = preempted[0].step
    assert STOP_AT <= stop_step < STEPS
    assert stopped[-1].event == "checkpoint" and stopped[-1].step == stop_step
    assert [s for s, _ in ckpt.committed_steps(output / "checkpoints")] == [stop_step]
    assert not (output / "adapter").exists()

    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == EXIT_DONE, second.stdout + second.stderr
    resumed = [line for line in lines(output) if line.event == "resume"]
    assert len(resumed) == 1
    assert (resumed[0].step, resumed[0].resume_idx, resumed[0].reason) == (stop_step, 1, None)
    assert resumed[0].run_id == preempted[0].run_id

    assert losses(output) == losses(straight)
    assert_same_parameters(output, straight)


class StopInsideStep(StopFlag):
    """Raises the flag between the micro-batches of a chosen step, as a signal could."""

    def __init__(self, trainer_box: list[Trainer], step: int) -> None:
        super().__init__()
        self.box = trainer_box
        self.step = step

    def is_set(self) -> bool:
        trainer = self.box[0]
        on_step = getattr(trainer, "sampler", None) is not None and trainer.sampler.cursor
        if on_step and trainer.optimizer.state and self._micro_batches_done(trainer) == 1:
            self.set("SIGTERM")
        return super().is_set()

    def _micro_batches_done(self, trainer: Trainer) -> int:
        params = [p for p in trainer.params if p.grad is not None]
        steps = max((int(s["step"]) for s in trainer.optimizer.state.values()), default=0)
        return 1 if params and steps == self.step else 0


def test_stop_between_micro_batches_abandons_the_step(
    straight: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = tmp_path_factory.getbasetemp() / "resume-cache"
    config = tiny_config_for(tmp_path / "out", cache, train={"max_steps": STEPS})
    box: list[Trainer] = []
    flag = StopInsideStep(box, step=5)
    trainer = Trainer(parse_config(config), echo=io.StringIO(), flag=flag)
    box.append(trainer)
    assert trainer.run() == EXIT_PREEMPTED
    stopped = lines(tmp_path / "out")
    assert [line.step for line in stopped if line.event == "checkpoint"] == [5]
    assert max(line.step for line in stopped if line.event == "step") == 5
    assert train(config) == EXIT_DONE
    assert losses(tmp_path / "out") == losses(straight)
    assert_same_parameters(tmp_path / "out", straight)


CRASH_POINTS = [f"after file {n}" for n in range(1, 6)] + ["after the manifest"]


@pytest.fixture(scope="module")
def straight_short(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("short")
    cache = tmp_path_factory.getbasetemp() / "resume-cache"
    assert train(tiny_config_for(folder / "out", cache, train={"max_steps": 4})) == EXIT_DONE
    return folder / "out"


class Crash(Exception):
    pass


@pytest.mark.parametrize("crash_point", CRASH_POINTS)
def test_crash_during_save_resumes_from_previous_checkpoint(
    straight_short: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    crash_point: str,
) -> None:
    cache = tmp_path_factory.getbasetemp() / "resume-cache"
    output = tmp_path / "out"
    config = tiny_config_for(output, cache, train={"max_steps": 4}, checkpoint={"every_steps": 2})
    real_commit_file, real_fsync_dir = ckpt._commit_file, ckpt._fsync_dir
    files = {"count": 0}

    def commit_file(path: Path) -> dict[str, object]:
        info = real_commit_file(path)
        files["count"] += 1
        in_second_save = path.parent.name == "step-00000004.tmp"
        if in_second_save and crash_point == f"after file {files['count'] - 5}":
            raise Crash(crash_point)
        return info

    def fsync_dir(path: Path) -> None:
        real_fsync_dir(path)
        if path.name == "step-00000004.tmp" and crash_point == "after the manifest":
            raise Crash(crash_point)

    monkeypatch.setattr(ckpt, "_commit_file", commit_file)
    monkeypatch.setattr(ckpt, "_fsync_dir", fsync_dir)
    with pytest.raises(Crash):
        train(config)
    monkeypatch.undo()
    assert files["count"] >= 6  # the first save (5 files) committed, the second one broke
    assert (output / "checkpoints" / "step-00000004.tmp").is_dir()
    assert ckpt.find_resumable(output / "checkpoints") == output / "checkpoints" / "step-00000002"

    assert train(config) == EXIT_DONE
    resumed = [line for line in lines(output) if line.event == "resume"]
    assert [line.step for line in resumed] == [2]
    assert not (output / "checkpoints" / "step-00000004.tmp").exists()
    assert losses(output) == losses(straight_short)
    assert_same_parameters(output, straight_short)


def test_damaged_newest_checkpoint_is_skipped_on_resume(
    straight_short: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = tmp_path_factory.getbasetemp() / "resume-cache"
    output = tmp_path / "out"
    config = tiny_config_for(output, cache, train={"max_steps": 4}, checkpoint={"every_steps": 1})
    flag = StopFlag()
    trainer = Trainer(parse_config(config), echo=io.StringIO(), flag=flag)
    original = trainer._commit

    def commit_then_stop(state: Any, writer: Any) -> None:
        original(state, writer)
        if state.step == 3:
            flag.set("SIGTERM")

    trainer._commit = commit_then_stop  # type: ignore[method-assign]
    assert trainer.run() == EXIT_PREEMPTED
    newest = output / "checkpoints" / "step-00000003"
    (newest / "optimizer.pt").write_bytes(b"\0" * (newest / "optimizer.pt").stat().st_size)
    assert train(config) == EXIT_DONE
    assert [line.step for line in lines(output) if line.event == "resume"] == [2]
    assert losses(output) == losses(straight_short)
    assert_same_parameters(output, straight_short)
