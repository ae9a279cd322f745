"""The training loop: exact resume, preemption that ends in a committed checkpoint, progress lines.

Started with the same command after any stop, the loop continues from the newest valid checkpoint
and produces the same parameters and losses as a run that was never stopped (on the same machine
and library versions): a checkpoint holds the weights, the optimiser, every RNG, the data cursor
and the counters, and the learning rate is a pure function of the step.

SIGTERM and SIGINT (and, when configured, the AWS spot interruption notice) only set a flag. The
flag is read before every micro-batch and every eval batch; when it is set, the step in progress is
abandoned (weights are only touched by the optimiser at the end of a step), the state of the step
start is committed as a checkpoint and the process exits with 143, which tells a supervisor to
start it again. Periodic checkpoints by step count and wall clock bound what a SIGKILL loses.

Exit codes: 0 done (or already done), 143 stopped by a signal or notice after a checkpoint,
1 an expected error (one line on stderr), 2 a bad config.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import platform
import random
import sys
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from trainers import checkpoint as ckpt
from trainers.config import ConfigError, OptimizerSettings, TrainConfig, load_config
from trainers.modeling import TrainerError, out_of_memory_is_an_error
from trainers.preemption import SpotNoticeWatcher, StopFlag, stop_on_signals
from trainers.protocol.jobdir import JOB_DIR_ENV, METRICS_LINK, OUTPUT_LINK
from trainers.protocol.progress import MetricsWriter, ProgressLine
from trainers.rng import capture_rng, restore_rng

if TYPE_CHECKING:
    import numpy as np
    import torch

    from trainers.data import BatchSampler, RowStore, TrainingData
    from trainers.modeling import Placement

EXIT_DONE = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_PREEMPTED = 143
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


def learning_rate(step: int, total: int, settings: OptimizerSettings) -> float:
    """The learning rate of the 0-based optimiser step ``step`` (a pure function of the step)."""
    peak = settings.lr
    if step < settings.warmup_steps:
        return peak * (step + 1) / settings.warmup_steps
    if settings.schedule == "constant":
        return peak
    span = max(total - settings.warmup_steps, 1)
    progress = min((step - settings.warmup_steps) / span, 1.0)
    floor = peak * settings.min_lr_ratio
    if settings.schedule == "linear":
        return peak - (peak - floor) * progress
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def total_steps(config: TrainConfig, batches_per_epoch: int) -> int:
    if config.train.max_steps is not None:
        return config.train.max_steps
    assert config.train.epochs is not None
    steps = config.train.epochs * batches_per_epoch / config.train.grad_accum
    if not math.isfinite(steps) or steps > 2**53:
        raise TrainerError(f"train.epochs {config.train.epochs:g} is too many steps to count")
    return max(1, math.ceil(steps))


@dataclass
class RunState:
    """The counters a checkpoint carries besides tensors."""

    run_id: str
    resume_idx: int = 0
    step: int = 0
    tokens_seen: int = 0
    elapsed: float = 0.0
    cursor: dict[str, int] = field(default_factory=dict)
    skipped_batches: int = 0


@dataclass
class StepBatch:
    """The micro-batches of one optimiser step, on the device, with their token counts."""

    inputs: list[torch.Tensor]
    picks: list[torch.Tensor]
    targets: list[torch.Tensor]
    predicted: int
    real_tokens: int


def _library_versions() -> dict[str, str]:
    import numpy
    import peft
    import safetensors
    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": numpy.__version__,
    }


class _RunLock:
    """One trainer per output folder: a second one would interleave checkpoints."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._handle = (folder / ".lock").open("a+")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            holder = self._handle.read().strip() or "another process"
            self._handle.close()
            message = f"{folder} is in use by a running trainer (pid {holder})"
            raise TrainerError(message) from None
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(str(os.getpid()))
        self._handle.flush()

    def release(self) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def _quiet_libraries() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def link_job_dir(output: Path, job_dir: str | None = None) -> None:
    """Point a gputui job folder at this run's metrics and outputs (see protocol/jobdir.py).

    The laptop then follows a job's metrics and pulls its results without reading its config.
    Each link is made under a temporary name and renamed over the old one, so a reader never
    finds it missing, even when a resume in another folder replaces it. A job folder that cannot
    take the links costs a warning, never the run.
    """
    folder = job_dir if job_dir is not None else os.environ.get(JOB_DIR_ENV)
    if not folder:
        return
    output = Path(os.path.abspath(output))
    links = {METRICS_LINK: output / "metrics.jsonl", OUTPUT_LINK: output}
    for name, target in links.items():
        link = Path(folder) / name
        scratch = Path(folder) / f".{name}.tmp-{os.getpid()}"
        try:
            scratch.unlink(missing_ok=True)
            os.symlink(target, scratch)
            os.replace(scratch, link)
        except OSError as exc:
            with contextlib.suppress(OSError):
                scratch.unlink()
            print(f"warning: cannot link {link} to {target}: {exc.strerror or exc}",
                  file=sys.stderr, flush=True)


class Trainer:
    """One start of a run: set up (or resume), train until done or stopped, report."""

    def __init__(
        self, config: TrainConfig, echo: IO[str] | None = sys.stdout, flag: StopFlag | None = None
    ) -> None:
        self.config = config
        self.echo = echo
        self.flag = flag or StopFlag()
        self.output = Path(config.output_dir)
        self.checkpoints = self.output / "checkpoints"

    # ---- setup ---------------------------------------------------------------------------------
    def _setup(self) -> None:
        import torch

        from trainers.allocator import keep_freed_memory
        from trainers.data import BatchSampler, DataCursor, prepare_data
        from trainers.dropout import use_word_dropout
        from trainers.modeling import load_base_model, load_tokenizer, resolve_placement, wrap_lora
        from trainers.rmsnorm import fuse_rmsnorms

        _quiet_libraries()
        config = self.config
        self.placement: Placement = resolve_placement(config)
        if config.train.cpu_threads is not None:
            torch.set_num_threads(config.train.cpu_threads)
        if config.train.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=self.placement.device.type != "cpu")
        random.seed(config.seed)
        torch.manual_seed(config.seed)
        import numpy as np

        np.random.seed(config.seed)
        self.tokenizer = load_tokenizer(config)
        self.data: TrainingData = prepare_data(
            Path(config.data.path),
            self.tokenizer,
            config.data.seq_len,
            config.data.packing,
            config.data.eval_fraction,
            config.cache_dir,
        )
        base = load_base_model(config, self.tokenizer, self.placement)
        torch.manual_seed(config.seed)
        model: Any = wrap_lora(base, config) if config.lora is not None else base
        fuse_rmsnorms(model)
        if self.placement.device.type == "cpu":
            keep_freed_memory()
            if config.lora is not None:
                use_word_dropout(model)
        model.train()
        self.model = model
        inner = model.get_base_model() if config.lora is not None else model
        self.decoder: Any = inner.get_decoder()
        self.head: Any = inner.get_output_embeddings()
        self.head_only = getattr(inner.config, "final_logit_softcapping", None) is None
        if config.train.compile:
            # The decoder sees fixed [batch, seq_len] shapes; the head's row count varies per step.
            self.decoder = torch.compile(self.decoder)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        opt = config.optimizer
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=opt.lr,
            betas=opt.betas,
            eps=opt.eps,
            weight_decay=opt.weight_decay,
            fused=True,
        )
        self.sampler: BatchSampler = BatchSampler(
            self.data.train.rows, config.train.batch_size, DataCursor(config.seed)
        )
        self.total = total_steps(config, self.sampler.batches_per_epoch)
        self.fingerprint = config.fingerprint()

    # ---- checkpoints ---------------------------------------------------------------------------
    def _weight_writers(self) -> list[ckpt.Writer]:
        from safetensors.torch import save_file, save_model

        if self.config.lora is not None:
            from peft import get_peft_model_state_dict

            def write_adapter(folder: Path) -> Sequence[str]:
                state = get_peft_model_state_dict(self.model)
                save_file(
                    {k: v.detach().contiguous() for k, v in state.items()},
                    str(folder / ADAPTER_FILES[0]),
                    metadata={"format": "pt"},
                )
                self.model.peft_config["default"].save_pretrained(str(folder))
                return list(ADAPTER_FILES)

            return [write_adapter]

        def write_model(folder: Path) -> Sequence[str]:
            save_model(self.model, str(folder / "model.safetensors"), metadata={"format": "pt"})
            return ["model.safetensors"]

        return [write_model]

    def _save(self, state: RunState, rng: dict[str, Any]) -> ckpt.Committed:
        import torch

        def write_optimizer(folder: Path) -> Sequence[str]:
            torch.save(self.optimizer.state_dict(), folder / "optimizer.pt")
            return ["optimizer.pt"]

        def write_rng(folder: Path) -> Sequence[str]:
            torch.save(rng, folder / "rng.pt")
            return ["rng.pt"]

        def write_state(folder: Path) -> Sequence[str]:
            payload = {
                "run_id": state.run_id,
                "resume_idx": state.resume_idx,
                "step": state.step,
                "total_steps": self.total,
                "tokens_seen": state.tokens_seen,
                "elapsed": state.elapsed,
                "cursor": state.cursor,
                "skipped_batches": state.skipped_batches,
                "seed": self.config.seed,
                "config_fingerprint": self.fingerprint,
                "config": self.config.model_dump(mode="json"),
                "versions": self.versions,
            }
            (folder / "trainer_state.json").write_text(json.dumps(payload, indent=1))
            return ["trainer_state.json"]

        writers = [*self._weight_writers(), write_optimizer, write_rng, write_state]
        return ckpt.save_checkpoint(
            self.checkpoints,
            state.step,
            writers,
            self.config.checkpoint.keep_last,
            {"run_id": state.run_id},
        )

    def _load(self, folder: Path) -> RunState:
        import torch
        from safetensors.torch import load_file, load_model

        from trainers.data import DataCursor

        if self.config.lora is not None:
            from peft import set_peft_model_state_dict

            weights = load_file(str(folder / ADAPTER_FILES[0]), device=str(self.placement.device))
            result: Any = set_peft_model_state_dict(self.model, weights)
            if result.unexpected_keys:
                raise TrainerError(
                    f"{folder}: adapter does not fit this model ({result.unexpected_keys[0]})"
                )
        else:
            device = str(self.placement.device)
            load_model(self.model, str(folder / "model.safetensors"), device=device)
        self.optimizer.load_state_dict(
            torch.load(folder / "optimizer.pt", map_location=self.placement.device)
        )
        saved = json.loads((folder / "trainer_state.json").read_text())
        state = RunState(
            run_id=saved["run_id"],
            resume_idx=saved["resume_idx"],
            step=saved["step"],
            tokens_seen=saved["tokens_seen"],
            elapsed=saved["elapsed"],
            cursor=saved["cursor"],
            skipped_batches=saved.get("skipped_batches", 0),
        )
        self.sampler.cursor = DataCursor.from_dict(state.cursor)
        self.saved_fingerprint = saved.get("config_fingerprint")
        restore_rng(torch.load(folder / "rng.pt"))  # after the data position, as it must be
        return state

    # ---- one step --------------------------------------------------------------------------------
    def _forward(
        self, inputs: torch.Tensor, picks: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Summed cross-entropy over the picked (assistant) positions of a micro-batch."""
        import torch.nn.functional as F

        if self.head_only:
            hidden = self.decoder(input_ids=inputs, use_cache=False).last_hidden_state
            chosen = hidden.reshape(-1, hidden.shape[-1]).index_select(0, picks)
            logits = self.head(chosen)
        else:
            full = self.model(input_ids=inputs, use_cache=False).logits
            logits = full.reshape(-1, full.shape[-1]).index_select(0, picks)
        return F.cross_entropy(logits.float(), targets, reduction="sum")

    def _batch(self, store: RowStore, rows: np.ndarray) -> tuple[Any, Any, Any, int, int]:
        import numpy as np
        import torch

        from trainers.data import PREDICT, REAL

        tokens, flags = store.batch(rows)
        picks = np.flatnonzero(flags[:, 1:] & PREDICT)
        device = self.placement.device
        non_blocking = device.type == "cuda"
        inputs = torch.from_numpy(np.ascontiguousarray(tokens[:, :-1]))
        targets = torch.from_numpy(tokens[:, 1:].reshape(-1)[picks])
        return (
            inputs.to(device, non_blocking=non_blocking),
            torch.from_numpy(picks).to(device, non_blocking=non_blocking),
            targets.to(device, non_blocking=non_blocking),
            len(picks),
            int(np.count_nonzero(flags[:, :-1] & REAL)),
        )

    def _next_step_batch(self) -> StepBatch:
        batch = StepBatch([], [], [], 0, 0)
        for _ in range(self.config.train.grad_accum):
            inputs, picks, targets, predicted, real = self._batch(
                self.data.train, self.sampler.next()
            )
            batch.inputs.append(inputs)
            batch.picks.append(picks)
            batch.targets.append(targets)
            batch.predicted += predicted
            batch.real_tokens += real
        return batch

    def _autocast(self) -> Any:
        import torch

        dtype = self.placement.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.placement.device.type, dtype=dtype)

    def _train_step(self, batch: StepBatch, lr: float) -> tuple[float, float] | None:
        """One optimiser step; None when the stop flag was seen before it completed."""
        import torch

        denominator = max(batch.predicted, 1)
        loss_sum = torch.zeros((), device=self.placement.device)
        for inputs, picks, targets in zip(batch.inputs, batch.picks, batch.targets, strict=True):
            if self.flag.is_set():
                return None
            with self._autocast():
                micro = self._forward(inputs, picks, targets)
            (micro / denominator).backward()
            loss_sum += micro.detach()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        clip = self.config.train.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(self.params, clip if clip is not None else math.inf)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss_sum) / denominator, float(norm)

    def _evaluate(self) -> float | None:
        """Mean loss over the held-out rows, or None when there are none or a stop came."""
        import numpy as np
        import torch

        store = self.data.eval
        if store is None:
            return None
        total, count = 0.0, 0
        self.model.eval()
        try:
            with torch.no_grad():
                size = self.config.train.batch_size
                for start in range(0, store.rows, size):
                    if self.flag.is_set():
                        return None
                    rows = np.arange(start, min(start + size, store.rows))
                    inputs, picks, targets, predicted, _ = self._batch(store, rows)
                    if predicted == 0:
                        continue
                    with self._autocast():
                        total += float(self._forward(inputs, picks, targets))
                    count += predicted
        finally:
            self.model.train()
        return total / count if count else None

    # ---- the run ---------------------------------------------------------------------------------
    def _line(self, state: RunState, event: str, **values: Any) -> ProgressLine:
        return ProgressLine(
            event=event,  # type: ignore[arg-type]
            run_id=state.run_id,
            resume_idx=state.resume_idx,
            step=state.step,
            total_steps=self.total,
            time=time.time(),
            elapsed=round(state.elapsed, 3),
            tokens_seen=state.tokens_seen,
            **values,
        )

    def _resume_or_start(self, writer: MetricsWriter) -> RunState:
        ckpt.remove_stale_temporaries(self.checkpoints)
        skipped: list[str] = []
        folder = ckpt.find_resumable(
            self.checkpoints, lambda path, why: skipped.append(f"{path.name}: {why}")
        )
        for note in skipped:
            print(f"skipping damaged checkpoint {note}", file=sys.stderr, flush=True)
        if folder is None:
            return RunState(run_id=uuid.uuid4().hex[:12])
        try:
            state = self._load(folder)
        except (RuntimeError, KeyError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrainerError(
                f"{folder} does not fit this config ({first}); "
                "resume with the config it was written with, or use another output_dir"
            ) from None
        state.resume_idx += 1
        changed = self.saved_fingerprint != self.fingerprint
        writer.write(
            self._line(
                state, "resume", path=str(folder), reason="config-changed" if changed else None
            )
        )
        return state

    def run(self) -> int:
        lock = _RunLock(self.output)
        try:
            link_job_dir(self.output)
            with out_of_memory_is_an_error("training"):
                self._setup()
                self.versions = _library_versions()
                with MetricsWriter(self.output / "metrics.jsonl", echo=self.echo) as writer:
                    state = self._resume_or_start(writer)
                    if state.step >= self.total:
                        self._finish(state, writer, last_loss=None)
                        return EXIT_DONE
                    return self._train(state, writer)
        finally:
            lock.release()

    def _train(self, state: RunState, writer: MetricsWriter) -> int:
        config = self.config
        watcher = None
        if config.preemption.spot_notice_url:
            watcher = SpotNoticeWatcher(
                config.preemption.spot_notice_url, config.preemption.poll_seconds, self.flag
            )
            watcher.start()
        started = time.monotonic()
        base_elapsed = state.elapsed
        last_save = started
        first_step = state.step
        tokens_at_start = state.tokens_seen
        last_committed = state.step if state.resume_idx else -1
        loss: float | None = None
        try:
            with stop_on_signals(self.flag):
                while state.step < self.total and not self.flag.is_set():
                    rng_at_start = capture_rng()
                    cursor_at_start = self.sampler.cursor.to_dict()
                    batch = self._next_step_batch()
                    if batch.predicted == 0:
                        self._skip(state)
                        continue
                    lr = learning_rate(state.step, self.total, config.optimizer)
                    result = self._train_step(batch, lr)
                    if result is None:
                        # Stopped mid-step: the weights are still those of the step start.
                        from trainers.data import DataCursor

                        self.sampler.cursor = DataCursor.from_dict(cursor_at_start)
                        restore_rng(rng_at_start)
                        break
                    loss, norm = result
                    now = time.monotonic()
                    state.step += 1
                    state.tokens_seen += batch.real_tokens
                    state.elapsed = base_elapsed + (now - started)
                    done_here = state.step - first_step
                    pace = (now - started) / done_here
                    writer.write(
                        self._line(
                            state,
                            "step",
                            loss=loss,
                            lr=lr,
                            grad_norm=norm,
                            tok_s=(state.tokens_seen - tokens_at_start) / max(now - started, 1e-9),
                            eta=pace * (self.total - state.step),
                        )
                    )
                    every = config.train.eval_every
                    if every and state.step % every == 0 and state.step < self.total:
                        eval_loss = self._evaluate()
                        if eval_loss is not None:
                            writer.write(self._line(state, "eval", eval_loss=eval_loss))
                    by_steps = config.checkpoint.every_steps
                    by_minutes = config.checkpoint.every_minutes
                    due = (by_steps is not None and state.step % by_steps == 0) or (
                        by_minutes is not None and now - last_save >= by_minutes * 60
                    )
                    if due and state.step < self.total and not self.flag.is_set():
                        self._commit(state, writer)
                        last_committed = state.step
                        last_save = time.monotonic()
                if self.flag.is_set() and state.step < self.total:
                    writer.write(self._line(state, "preempted", reason=self.flag.reason))
                    if last_committed != state.step:
                        state.elapsed = base_elapsed + (time.monotonic() - started)
                        self._commit(state, writer)
                    return EXIT_PREEMPTED
                state.elapsed = base_elapsed + (time.monotonic() - started)
                self._commit(state, writer)
                self._finish(state, writer, last_loss=loss)
                return EXIT_DONE
        finally:
            if watcher is not None:
                watcher.stop()

    @staticmethod
    def _skip(state: RunState) -> None:
        """Skip a step whose batches hold no assistant token: there is no loss to learn from, and
        AdamW would still move the weights (momentum, weight decay). The data moves on."""
        state.skipped_batches += 1
        print(
            f"warning: step {state.step + 1}: the batch has no assistant tokens (nothing to "
            f"learn); skipped it ({state.skipped_batches} skipped so far)",
            file=sys.stderr,
            flush=True,
        )

    def _commit(self, state: RunState, writer: MetricsWriter) -> None:
        state.cursor = self.sampler.cursor.to_dict()
        committed = self._save(replace(state), capture_rng())
        writer.write(
            self._line(
                state,
                "checkpoint",
                path=str(committed.path),
                size_bytes=committed.size_bytes,
                seconds=round(committed.seconds, 4),
            )
        )

    def _finish(self, state: RunState, writer: MetricsWriter, last_loss: float | None) -> None:
        """Write the final adapter (or model) with the tokenizer, then the ``done`` line."""
        eval_loss = self._evaluate() if self.config.train.eval_every else None
        if eval_loss is not None:
            writer.write(self._line(state, "eval", eval_loss=eval_loss))
        name = "adapter" if self.config.lora is not None else "model"
        final = self.output / name
        scratch = self.output / f"{name}.tmp-{os.getpid()}"
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        for write in self._weight_writers():
            write(scratch)
        if self.config.lora is None:
            self.model.config.save_pretrained(str(scratch))
        self.tokenizer.save_pretrained(str(scratch))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(scratch, final)
        writer.write(self._line(state, "done", loss=last_loss, path=str(final)))


def main(argv: Sequence[str] | None = None, require_lora: bool = False) -> int:
    prog = "python -m trainers.lora" if require_lora else "python -m trainers.loop"
    parser = argparse.ArgumentParser(
        prog=prog, description="Train from a YAML config; run it again to resume."
    )
    parser.add_argument("--config", required=True, help="training config (YAML)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override one config field (repeatable), e.g. --set train.max_steps=50",
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"error: {exc.source}: {line}", file=sys.stderr)
        return EXIT_CONFIG
    if require_lora and config.lora is None:
        print(f"error: {args.config}: lora: this config has no lora section", file=sys.stderr)
        return EXIT_CONFIG
    from trainers.data import DataError

    try:
        return Trainer(config).run()
    except (TrainerError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a full disk, an output_dir that is a file, no permission
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR


def exit_with(code: int) -> None:
    """Exit; after a preemption skip the interpreter's teardown (about a second with torch loaded)
    because the checkpoint is committed and every file is closed."""
    if code == EXIT_PREEMPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    exit_with(main())
