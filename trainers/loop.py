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

The pieces live apart: the tensor work of a step in ``step.py``, what a checkpoint holds in
``run_checkpoint.py``, the final result in ``export.py`` and the command line in ``train_cli.py``
(``python -m trainers.loop`` runs it).
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
import warnings
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from trainers import checkpoint as ckpt
from trainers.config import TrainConfig
from trainers.export import export_result
from trainers.job_links import link_job_dir
from trainers.modeling import TrainerError, out_of_memory_is_an_error
from trainers.preemption import SpotNoticeWatcher, StopFlag, stop_on_signals
from trainers.protocol.progress import MetricsWriter, ProgressLine
from trainers.rng import capture_rng, restore_rng
from trainers.run_checkpoint import RunPayload, RunState, library_versions
from trainers.run_lock import RunLock
from trainers.schedule import learning_rate, total_steps
from trainers.step import TrainingSteps

if TYPE_CHECKING:
    from trainers.data import BatchSampler, TrainingData
    from trainers.modeling import Placement

#: What ``Trainer.run`` returns: the run is done (or was already), or it stopped after a checkpoint.
EXIT_DONE = 0
EXIT_PREEMPTED = 143


def _quiet_libraries() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


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
        self.steps = TrainingSteps(
            config,
            self.placement,
            model,
            self.data,
            self.sampler,
            self.optimizer,
            self.params,
            self.flag,
        )

    def _evaluate(self) -> float | None:
        """Mean loss over the held-out rows, or None when there are none or a stop came."""
        return self.steps.evaluate()

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
            state, saved_fingerprint = self.payload.load(folder, self.sampler)
        except (RuntimeError, KeyError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrainerError(
                f"{folder} does not fit this config ({first}); "
                "resume with the config it was written with, or use another output_dir"
            ) from None
        state.resume_idx += 1
        changed = saved_fingerprint != self.fingerprint
        writer.write(
            self._line(
                state, "resume", path=str(folder), reason="config-changed" if changed else None
            )
        )
        return state

    def run(self) -> int:
        lock = RunLock(self.output)
        try:
            link_job_dir(self.output)
            with out_of_memory_is_an_error("training"):
                self._setup()
                self.payload = RunPayload(
                    self.config,
                    self.model,
                    self.optimizer,
                    self.placement.device,
                    self.total,
                    self.fingerprint,
                    library_versions(),
                )
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
                    batch = self.steps.next_batch()
                    if batch.predicted == 0:
                        self._skip(state)
                        continue
                    lr = learning_rate(state.step, self.total, config.optimizer)
                    result = self.steps.train_step(batch, lr)
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
        committed = self.payload.save(self.checkpoints, replace(state), capture_rng())
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
        final = export_result(self.output, self.config, self.model, self.tokenizer)
        writer.write(self._line(state, "done", loss=last_loss, path=str(final)))


if __name__ == "__main__":
    from trainers.train_cli import exit_with, main

    exit_with(main())
