"""One optimiser step and the eval loss: the tensor work of training, apart from the loop's rules.

The loss is summed cross-entropy over the assistant tokens, divided by their count over the whole
step, so that gradient accumulation gives the gradient of one large batch. Only the picked
positions go through the output head (unless the model soft-caps its logits), which keeps the
largest activation of a step small. The stop flag is read before every micro-batch and every eval
batch; a step that sees it returns None before the optimiser touched the weights.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainers.config import TrainConfig
from trainers.preemption import StopFlag

if TYPE_CHECKING:
    import numpy as np
    import torch

    from trainers.data import BatchSampler, RowStore, TrainingData
    from trainers.modeling import Placement


@dataclass
class StepBatch:
    """The micro-batches of one optimiser step, on the device, with their token counts."""

    inputs: list[torch.Tensor]
    picks: list[torch.Tensor]
    targets: list[torch.Tensor]
    predicted: int
    real_tokens: int


class TrainingSteps:
    """Takes optimiser steps and measures the eval loss for one model, optimiser and data."""

    def __init__(
        self,
        config: TrainConfig,
        placement: Placement,
        model: Any,
        data: TrainingData,
        sampler: BatchSampler,
        optimizer: torch.optim.Optimizer,
        params: list[torch.nn.Parameter],
        flag: StopFlag,
    ) -> None:
        import torch

        self.config = config
        self.device = placement.device
        self.autocast_dtype = placement.autocast_dtype
        self.model = model
        self.data = data
        self.sampler = sampler
        self.optimizer = optimizer
        self.params = params
        self.flag = flag
        inner = model.get_base_model() if config.lora is not None else model
        self.decoder: Any = inner.get_decoder()
        self.head: Any = inner.get_output_embeddings()
        self.head_only = getattr(inner.config, "final_logit_softcapping", None) is None
        if config.train.compile:
            # The decoder sees fixed [batch, seq_len] shapes; the head's row count varies per step.
            self.decoder = torch.compile(self.decoder)

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
        device = self.device
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

    def next_batch(self) -> StepBatch:
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

        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def train_step(self, batch: StepBatch, lr: float) -> tuple[float, float] | None:
        """One optimiser step; None when the stop flag was seen before it completed."""
        import torch

        denominator = max(batch.predicted, 1)
        loss_sum = torch.zeros((), device=self.device)
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

    def evaluate(self) -> float | None:
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

