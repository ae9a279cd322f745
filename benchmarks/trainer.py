"""gputui's trainer against HF ``Trainer`` + peft on the same model, data, batch and steps.

    python benchmarks/trainer.py [--config configs/dev.yaml] [--steps 60] [--warmup 10]
                                 [--rounds 2] [--set section.field=value ...]

Both sides train the same LoRA (same base weights, target modules, rank, optimiser and schedule)
with the same batch size and number of steps on the config's chat data. HF runs twice: on the very
rows this trainer trains on (packed, no padding: the like-for-like comparison), and in its usual
SFT form, a conversation per row padded to the longest of its batch. Every side runs in a fresh
process, ``--rounds`` times, alternating; tokens per second counts non-padding input tokens of the
steps after ``--warmup``, as the median of per-step rates (a shared machine's bursts of load
skew a plain average), with no checkpoint or eval inside the timed steps. Then the trainer is
sent SIGTERM mid-run to time the signal-to-committed-checkpoint path, and the checkpoint sizes
of both are printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from trainers.config import TrainConfig, load_config  # noqa: E402


def bench_config(args: argparse.Namespace, output: Path, steps: int) -> TrainConfig:
    overrides = [
        *args.overrides,
        f"output_dir={output}",
        f"train.max_steps={steps}",
        "train.eval_every=null",
        f"checkpoint.every_steps={steps + 1000}",
        "checkpoint.every_minutes=null",
    ]
    if args.cache:
        overrides.append(f"data.cache_dir={args.cache}")
    return load_config(args.config, overrides)


def timed_rate(times: list[float], tokens: list[int], warmup: int) -> dict[str, float]:
    """Throughput of the steps after ``warmup``: the median of the per-step rates (robust to
    bursts of load from other processes on a shared machine) and the rate over the whole span."""
    steps = list(zip(times[warmup - 1 :], tokens[warmup - 1 :], strict=True))
    rates = sorted((n1 - n0) / (t1 - t0) for (t0, n0), (t1, n1) in itertools.pairwise(steps))
    durations = sorted(t1 - t0 for (t0, _), (t1, _) in itertools.pairwise(steps))
    return {
        "tok_s": rates[len(rates) // 2],
        "tok_s_span": (tokens[-1] - tokens[warmup - 1]) / (times[-1] - times[warmup - 1]),
        "median_step_ms": durations[len(durations) // 2] * 1000,
    }


def run_ours(args: argparse.Namespace, output: Path) -> dict[str, Any]:
    import io

    from trainers.loop import Trainer
    from trainers.protocol.progress import read_lines

    config = bench_config(args, output, args.steps)
    started = time.monotonic()
    code = Trainer(config, echo=io.StringIO()).run()
    total = time.monotonic() - started
    lines = read_lines(output / "metrics.jsonl")
    steps = [line for line in lines if line.event == "step"]
    result: dict[str, Any] = timed_rate(
        [s.time for s in steps], [s.tokens_seen for s in steps], args.warmup
    )
    checkpoint = next(line for line in lines if line.event == "checkpoint")
    result.update(
        exit_code=code,
        wall=total,
        checkpoint_bytes=checkpoint.size_bytes,
        first_loss=steps[0].loss,
        last_loss=steps[-1].loss,
    )
    return result


def run_hf(args: argparse.Namespace, output: Path, packed: bool) -> dict[str, Any]:
    """HF Trainer + peft on the same packed rows, or (``packed=False``) in its usual SFT form:
    one conversation per row, padded to the longest of each batch."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )
    from transformers.utils import logging as hf_logging

    from trainers.checkpoint import folder_size
    from trainers.data import PREDICT, REAL, prepare_data
    from trainers.modeling import load_tokenizer

    hf_logging.set_verbosity_error()
    config = bench_config(args, output, args.steps)
    assert config.lora is not None
    tokenizer = load_tokenizer(config)
    data = prepare_data(
        Path(config.data.path),
        tokenizer,
        config.data.seq_len,
        packed,
        config.data.eval_fraction,
        config.cache_dir,
    )
    tokens, flags = data.train.batch(np.arange(data.train.rows))
    if packed and not np.all(flags[:, :-1] & REAL):
        raise SystemExit("the benchmark compares packed rows; set data.packing: true")
    rows: list[dict[str, Any]] = []
    for row in range(len(tokens)):
        # Packed rows hold no padding, so neither side needs an attention mask there.
        length = len(tokens[row]) - 1 if packed else int(np.count_nonzero(flags[row] & REAL))
        ids = tokens[row, :length]
        item: dict[str, Any] = {
            "input_ids": torch.from_numpy(ids.copy()),
            "labels": torch.from_numpy(np.where(flags[row, :length] & PREDICT, ids, -100)),
        }
        if not packed:
            item = {key: value.tolist() for key, value in item.items()}
            item["attention_mask"] = [1] * length
        rows.append(item)
    collator: Any = (
        default_data_collator
        if packed
        else DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100)
    )

    base_dir = Path(args.base)
    torch.manual_seed(config.seed)
    model: Any = AutoModelForCausalLM.from_pretrained(str(base_dir), attn_implementation="sdpa")
    model.config.use_cache = False
    settings = config.lora
    model = get_peft_model(
        model,
        LoraConfig(
            r=settings.r,
            lora_alpha=settings.alpha,
            lora_dropout=settings.dropout,
            target_modules=list(settings.target_modules),
            modules_to_save=list(settings.modules_to_save) or None,
            task_type="CAUSAL_LM",
        ),
    )
    opt = config.optimizer
    training = TrainingArguments(
        output_dir=str(output),
        per_device_train_batch_size=config.train.batch_size,
        gradient_accumulation_steps=config.train.grad_accum,
        max_steps=args.steps,
        learning_rate=opt.lr,
        weight_decay=opt.weight_decay,
        adam_beta1=opt.betas[0],
        adam_beta2=opt.betas[1],
        adam_epsilon=opt.eps,
        lr_scheduler_type="cosine",
        warmup_steps=opt.warmup_steps,
        max_grad_norm=config.train.grad_clip or 0.0,
        logging_steps=args.steps,
        save_strategy="steps",
        save_steps=args.steps,
        eval_strategy="no",
        report_to="none",
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available(),
        dataloader_pin_memory=torch.cuda.is_available(),
        seed=config.seed,
    )
    step_times: list[float] = []
    step_tokens: list[int] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            step_times.append(time.time())
            step_tokens.append(int(state.num_input_tokens_seen))

    trainer = Trainer(
        model=model,
        args=training,
        train_dataset=rows,
        data_collator=collator,
        callbacks=[StepClock()],
    )
    started = time.monotonic()
    trainer.train()
    total = time.monotonic() - started
    result: dict[str, Any] = timed_rate(step_times, step_tokens, args.warmup)
    history = [entry for entry in trainer.state.log_history if "loss" in entry]
    checkpoints = sorted(output.glob("checkpoint-*"))
    result.update(
        wall=total,
        checkpoint_bytes=folder_size(checkpoints[-1]) if checkpoints else None,
        last_loss=history[-1]["loss"] if history else None,
    )
    return result


def sigterm_to_checkpoint(args: argparse.Namespace, output: Path) -> dict[str, Any]:
    """Start the trainer as a supervisor would, SIGTERM it mid-run, time the committed save."""
    config_path = output / "sigterm.json"
    config = bench_config(args, output, 100_000)
    config_path.write_text(json.dumps(config.model_dump(mode="json")))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "trainers.lora", "--config", str(config_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    sent = committed = None
    for text in process.stdout:
        if sent is None and text.startswith(f"step {args.warmup}/"):
            process.send_signal(signal.SIGTERM)
            sent = time.monotonic()
        elif sent is not None and text.startswith("checkpoint"):
            committed = time.monotonic()
            break
    process.wait(timeout=120)
    exited = time.monotonic()
    if sent is None or committed is None:
        code = process.returncode
        raise SystemExit(f"the trainer ended without a SIGTERM checkpoint (exit {code})")
    return {
        "commit_s": committed - sent,
        "exit_s": exited - sent,
        "exit_code": process.returncode,
    }


def child(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        args.overrides.append(f"train.cpu_threads={args.threads}")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    if args.side == "ours":
        result = run_ours(args, output)
    elif args.side in ("hf", "hf-padded"):
        result = run_hf(args, output, packed=args.side == "hf")
    else:
        result = sigterm_to_checkpoint(args, output)
    print("RESULT " + json.dumps(result), flush=True)


def spawn(args: argparse.Namespace, side: str, output: Path, base: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--side",
        side,
        "--output",
        str(output),
        "--base",
        str(base),
        "--cache",
        str(args.cache),
        "--config",
        str(args.config),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--threads",
        str(args.threads or 0),
    ]
    for item in args.overrides:
        command += ["--set", item]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    for text in done.stdout.splitlines():
        if text.startswith("RESULT "):
            return dict(json.loads(text[len("RESULT ") :]))
    raise SystemExit(f"{side} run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def describe(config: TrainConfig) -> str:
    import torch

    arch = config.model.arch
    model = (
        f"random-init Llama hidden {arch.hidden_size}, {arch.num_layers} layers"
        if arch is not None
        else str(config.model.name_or_path)
    )
    lora = config.lora
    adapted = f"LoRA r={lora.r} on {len(lora.target_modules)} module kinds" if lora else "full"
    if lora and lora.modules_to_save:
        adapted += f" + {', '.join(lora.modules_to_save)}"
    device = "cuda" if torch.cuda.is_available() else f"cpu, {os.cpu_count()} cores"
    return (
        f"{model}; {adapted}; batch {config.train.batch_size} x accum {config.train.grad_accum} "
        f"x seq {config.data.seq_len} packed; torch {torch.__version__} ({device})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "dev.yaml"))
    parser.add_argument("--steps", type=int, default=60, help="training steps of each run")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the timing")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side, alternating")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads of both (0: torch's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument(
        "--side", choices=("ours", "hf", "hf-padded", "sigterm"), help=argparse.SUPPRESS
    )
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        child(args)
        return
    if args.warmup < 1 or args.steps <= args.warmup:
        parser.error("need 1 <= --warmup < --steps")

    with tempfile.TemporaryDirectory(prefix="gputui-bench-") as scratch:
        work = Path(scratch)
        args.cache = str(work / "cache")
        base = work / "ours-0" / "base"  # the first run of ours writes the random-init base
        ours: list[dict[str, Any]] = []
        hf: list[dict[str, Any]] = []
        padded: list[dict[str, Any]] = []
        for round_index in range(args.rounds):
            ours.append(spawn(args, "ours", work / f"ours-{round_index}", base))
            hf.append(spawn(args, "hf", work / f"hf-{round_index}", base))
            padded.append(spawn(args, "hf-padded", work / f"padded-{round_index}", base))
        stop = spawn(args, "sigterm", work / "sigterm", base)
        config = bench_config(args, work / "describe", args.steps)

    report(args, config, ours, hf, padded, stop)


def _rounds(results: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['tok_s']:,.0f}" for r in results)


def report(
    args: argparse.Namespace,
    config: TrainConfig,
    ours: list[dict[str, Any]],
    hf: list[dict[str, Any]],
    padded: list[dict[str, Any]],
    stop: dict[str, Any],
) -> None:
    best = {
        name: max(results, key=lambda r: r["tok_s"])
        for name, results in (("ours", ours), ("hf", hf), ("padded", padded))
    }
    timed = args.steps - args.warmup
    threads = args.threads or "torch default"
    print(f"setup            : {describe(config)}; threads {threads}")
    print(
        f"work             : {args.steps} steps each, the last {timed} timed; tok/s = median of "
        f"per-step rates, best of {args.rounds} alternating rounds (every round in brackets)"
    )
    lines = (
        ("gputui trainer, packed rows", "ours", ours),
        ("HF Trainer + peft, same packed rows", "hf", hf),
        ("HF Trainer + peft, a conversation per row, padded per batch", "padded", padded),
    )
    for label, name, results in lines:
        print(
            f"{label:<61}: {best[name]['tok_s']:>8,.0f} tok/s, median step "
            f"{best[name]['median_step_ms']:.1f} ms  ({_rounds(results)})"
        )
    same = best["ours"]["tok_s"] / best["hf"]["tok_s"]
    paired = ", ".join(f"{a['tok_s'] / b['tok_s']:.2f}" for a, b in zip(ours, hf, strict=True))
    print(f"ratio vs HF, same packed rows   : {same:.2f}x  (round by round: {paired})")
    usual = best["ours"]["tok_s"] / best["padded"]["tok_s"]
    print(f"ratio vs HF, padded conversations: {usual:.2f}x  (non-padding tokens per second)")
    print(
        f"SIGTERM -> committed checkpoint : {stop['commit_s']:.3f} s; process gone after "
        f"{stop['exit_s']:.3f} s, exit code {stop['exit_code']}"
    )
    hf_size = best["hf"].get("checkpoint_bytes")
    hf_text = f"{hf_size / 1e6:.2f} MB" if hf_size else "N/A"
    print(
        f"checkpoint size                 : gputui {best['ours']['checkpoint_bytes'] / 1e6:.2f} MB "
        f"(adapter, optimizer, RNG, state, manifest); HF Trainer {hf_text}"
    )


if __name__ == "__main__":
    main()
