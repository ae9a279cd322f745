"""Around the steps: schedule, LoRA output, keep-last-K, signals, spot notices, refusals."""

from __future__ import annotations

import io
import json
import signal
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from trainer_helpers import run_trainer, write_yaml

from trainers import checkpoint as ckpt
from trainers.config import OptimizerSettings, parse_config
from trainers.loop import EXIT_DONE, EXIT_PREEMPTED, Trainer
from trainers.modeling import TrainerError
from trainers.preemption import SpotNoticeWatcher, StopFlag, stop_on_signals
from trainers.protocol.progress import read_lines
from trainers.run_lock import RunLock
from trainers.schedule import learning_rate

Config = Callable[..., dict[str, Any]]


def train(config: dict[str, Any], flag: StopFlag | None = None) -> int:
    return Trainer(parse_config(config), echo=io.StringIO(), flag=flag).run()


def test_learning_rate_is_a_function_of_the_step() -> None:
    cosine = OptimizerSettings.model_validate(
        {"lr": 1.0, "warmup_steps": 4, "schedule": "cosine", "min_lr_ratio": 0.1}
    )
    assert [learning_rate(s, 14, cosine) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert learning_rate(9, 14, cosine) == pytest.approx(0.55)
    assert learning_rate(14, 14, cosine) == pytest.approx(0.1)
    linear = OptimizerSettings.model_validate(
        {"lr": 1.0, "schedule": "linear", "min_lr_ratio": 0.0}
    )
    assert learning_rate(5, 10, linear) == pytest.approx(0.5)
    constant = OptimizerSettings.model_validate({"lr": 0.3, "schedule": "constant"})
    assert learning_rate(7, 10, constant) == 0.3


def test_lora_run_writes_a_loadable_trainable_adapter(tiny_config: Config) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = tiny_config(train={"max_steps": 6})
    assert train(config) == EXIT_DONE
    output = Path(config["output_dir"])
    adapter = output / "adapter"
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json"} <= {
        p.name for p in adapter.iterdir()
    }
    saved = load_file(adapter / "adapter_model.safetensors")
    lora_b = [name for name in saved if "lora_B" in name]
    assert lora_b and all(saved[name].abs().sum() > 0 for name in lora_b)  # B starts at zero
    base_state = load_file(output / "base" / "model.safetensors")
    embed = next(v for k, v in saved.items() if "embed_tokens" in k)
    assert not torch.equal(embed, base_state["model.embed_tokens.weight"])

    base = AutoModelForCausalLM.from_pretrained(str(output / "base"))
    model = PeftModel.from_pretrained(base, str(adapter), is_trainable=True)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("lora_B" in n for n in trainable)
    some_b = next(n for n in trainable if "lora_B" in n and "q_proj" in n)
    short = some_b.replace(".default", "")  # peft names the adapter in memory, not on disk
    assert torch.equal(trainable[some_b].detach(), saved[short])
    ids = torch.tensor([[2, 30, 40, 50, 3]])
    model(input_ids=ids, labels=ids).loss.backward()
    grad = trainable[some_b].grad
    assert grad is not None and grad.abs().sum() > 0


def test_progress_lines_and_keep_last(tiny_config: Config) -> None:
    config = tiny_config(
        train={"max_steps": 10, "eval_every": 5}, checkpoint={"every_steps": 2, "keep_last": 2}
    )
    assert train(config) == EXIT_DONE
    output = Path(config["output_dir"])
    assert [s for s, _ in ckpt.committed_steps(output / "checkpoints")] == [10, 8]
    lines = read_lines(output / "metrics.jsonl")
    events = [line.event for line in lines]
    assert events.count("step") == 10 and events.count("checkpoint") == 5
    assert events.count("eval") == 2 and events[-1] == "done"
    steps = [line for line in lines if line.event == "step"]
    assert [line.step for line in steps] == list(range(1, 11))
    assert len({line.run_id for line in lines}) == 1
    for line in steps:
        assert line.total_steps == 10 and line.resume_idx == 0
        assert line.loss is not None and line.lr is not None and line.grad_norm is not None
        assert line.tok_s is not None and line.tok_s > 0 and line.eta is not None
    assert steps[-1].tokens_seen == 10 * 2 * 4 * 64  # steps x accum x batch x seq_len, packed
    assert steps[-1].eta == 0
    checkpoint_lines = [line for line in lines if line.event == "checkpoint"]
    assert all(line.size_bytes and line.size_bytes > 0 for line in checkpoint_lines)
    assert lines[-1].path == str(output / "adapter")


def test_full_fine_tune_resumes_exactly(tiny_config: Config) -> None:
    """Without a lora section every weight trains and checkpoints hold model.safetensors."""
    straight = tiny_config("straight", train={"max_steps": 4, "eval_every": 2})
    stopped = tiny_config("stopped", train={"max_steps": 4, "eval_every": 2})
    del straight["lora"], stopped["lora"]
    assert train(straight) == EXIT_DONE
    flag = StopFlag()
    trainer = Trainer(parse_config(stopped), echo=io.StringIO(), flag=flag)
    original = trainer._evaluate

    def stop_during_eval() -> float | None:
        flag.set("SIGINT")
        return original()

    trainer._evaluate = stop_during_eval  # type: ignore[method-assign]
    assert trainer.run() == EXIT_PREEMPTED
    folder = ckpt.find_resumable(Path(stopped["output_dir"]) / "checkpoints")
    assert folder is not None and folder.name == "step-00000002"
    assert (folder / "model.safetensors").is_file()
    assert train(stopped) == EXIT_DONE
    one = load_file(Path(straight["output_dir"]) / "model" / "model.safetensors")
    other = load_file(Path(stopped["output_dir"]) / "model" / "model.safetensors")
    assert one.keys() == other.keys() and len(one) > 5
    assert all(torch.equal(one[name], other[name]) for name in one)


def test_restarting_a_finished_run_trains_nothing(tiny_config: Config) -> None:
    config = tiny_config(train={"max_steps": 3})
    assert train(config) == EXIT_DONE
    metrics = Path(config["output_dir"]) / "metrics.jsonl"
    before = [line.event for line in read_lines(metrics)]
    assert train(config) == EXIT_DONE
    after = [line.event for line in read_lines(metrics)][len(before) :]
    assert after[0] == "resume" and "step" not in after and after[-1] == "done"


def test_one_trainer_per_output_folder(tiny_config: Config) -> None:
    config = tiny_config()
    lock = RunLock(Path(config["output_dir"]))
    try:
        with pytest.raises(TrainerError, match="in use by a running trainer"):
            train(config)
    finally:
        lock.release()


def test_signal_sets_flag_and_chains_earlier_handler() -> None:
    seen: list[int] = []
    earlier = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        flag = StopFlag()
        with stop_on_signals(flag):
            signal.raise_signal(signal.SIGTERM)
            assert flag.is_set() and flag.reason == "SIGTERM"
        assert seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is not earlier  # ours is gone, the lambda is back
        signal.raise_signal(signal.SIGTERM)
        assert seen == [signal.SIGTERM, signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, earlier)


class MetadataService:
    """A stand-in for the EC2 instance metadata service on 127.0.0.1 (IMDSv2 or v1)."""

    def __init__(self, with_tokens: bool, notice_after: int) -> None:
        self.with_tokens = with_tokens
        self.notice_after = notice_after
        self.gets = 0
        self.tokens_seen: list[str | None] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_PUT(self) -> None:
                if service.with_tokens and self.path == "/latest/api/token":
                    self._answer(200, b"token-123")
                else:
                    self._answer(405, b"")

            def do_GET(self) -> None:
                service.gets += 1
                token = self.headers.get("X-aws-ec2-metadata-token")
                service.tokens_seen.append(token)
                if self.path != "/latest/meta-data/spot/instance-action":
                    self._answer(404, b"")
                elif service.with_tokens and token != "token-123":
                    self._answer(401, b"")
                elif service.gets > service.notice_after:
                    body = {"action": "terminate", "time": "2026-01-01T00:02:00Z"}
                    self._answer(200, json.dumps(body).encode())
                else:
                    self._answer(404, b"")

            def _answer(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = (
            f"http://127.0.0.1:{self.server.server_port}/latest/meta-data/spot/instance-action"
        )
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def metadata() -> Iterator[Callable[..., MetadataService]]:
    started: list[MetadataService] = []

    def start(with_tokens: bool = True, notice_after: int = 0) -> MetadataService:
        started.append(MetadataService(with_tokens, notice_after))
        return started[-1]

    yield start
    for service in started:
        service.close()


@pytest.mark.parametrize("with_tokens", [True, False], ids=["imdsv2", "imdsv1"])
def test_spot_watcher_polls_until_notice(
    metadata: Callable[..., MetadataService], with_tokens: bool
) -> None:
    service = metadata(with_tokens=with_tokens, notice_after=2)
    flag = StopFlag()
    watcher = SpotNoticeWatcher(service.url, 0.01, flag)
    assert watcher.poll_once() is False and watcher.poll_once() is False
    assert not flag.is_set()
    assert watcher.poll_once() is True
    assert flag.reason == "spot-notice"
    expected = "token-123" if with_tokens else None
    assert service.tokens_seen == [expected] * 3


def test_unreachable_metadata_service_is_no_notice() -> None:
    flag = StopFlag()
    watcher = SpotNoticeWatcher("http://127.0.0.1:9/latest/meta-data/spot/instance-action", 1, flag)
    assert watcher.poll_once() is False and not flag.is_set()


def test_spot_notice_stops_training_with_a_checkpoint(
    tiny_config: Config, metadata: Callable[..., MetadataService]
) -> None:
    service = metadata(with_tokens=True, notice_after=3)
    config = tiny_config(
        train={"max_steps": 5000, "eval_every": None},
        preemption={"spot_notice_url": service.url, "poll_seconds": 0.02},
    )
    assert train(config) == EXIT_PREEMPTED
    output = Path(config["output_dir"])
    lines = read_lines(output / "metrics.jsonl")
    preempted = [line for line in lines if line.event == "preempted"]
    assert len(preempted) == 1 and preempted[0].reason == "spot-notice"
    assert 0 < preempted[0].step < 5000
    assert lines[-1].event == "checkpoint" and lines[-1].step == preempted[0].step
    assert ckpt.find_resumable(output / "checkpoints") is not None


def test_qlora_is_refused_on_cpu_with_one_line(tmp_path: Path, tiny_config: Config) -> None:
    path = write_yaml(tmp_path / "q.yaml", tiny_config(lora={"load_in_4bit": True}))
    done = run_trainer("--config", str(path), "--set", "train.device=auto")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: QLoRA (lora.load_in_4bit) needs a CUDA GPU and this run is on the CPU; "
        "set lora.load_in_4bit: false to train LoRA in full precision"
    ]
    assert not (Path(tiny_config()["output_dir"]) / "metrics.jsonl").exists()


def test_lora_cli_needs_a_lora_section(tmp_path: Path, tiny_config: Config) -> None:
    config = tiny_config()
    del config["lora"]
    done = run_trainer("--config", str(write_yaml(tmp_path / "full.yaml", config)))
    assert done.returncode == 2
    assert done.stderr.strip().endswith("lora: this config has no lora section")


def test_checkpoint_of_another_shape_is_one_clear_error(tiny_config: Config) -> None:
    assert train(tiny_config(train={"max_steps": 2})) == EXIT_DONE
    with pytest.raises(TrainerError, match="does not fit this config"):
        train(tiny_config(train={"max_steps": 4}, lora={"r": 8}))
