"""A cheaper dropout for the LoRA layers of a run on the CPU.

peft applies its own dropout to the input of every adapted layer, so a small LoRA step on a CPU
spends about a fifth of its time drawing Bernoulli masks (``torch.dropout`` draws one random number
per element). ``WordDropout`` draws one 64-bit word for four elements and keeps an element when its
16 bits clear a threshold: the drop probability is rounded to a multiple of 1/65536 (0.05 becomes
0.0500031), the mask comes from torch's seeded generator (so checkpoints capture it like any other
draw) and forward plus backward take about 40% of the time. On a GPU ``torch.dropout`` is already
fused and stays in place.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

_LEVELS = 1 << 16


class WordDropout(nn.Module):
    """Dropout whose mask uses 16 random bits per element, four elements per 64-bit draw."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        dropped = round(p * _LEVELS)
        self.p = dropped / _LEVELS
        self.threshold = -(_LEVELS // 2) + dropped  # int16 values at or above it are kept
        self.scale = 1.0 / (1.0 - self.p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        count = x.numel()
        words = torch.empty((count + 3) // 4, dtype=torch.int64, device=x.device)
        words.random_(-(2**63), None)
        keep = words.view(torch.int16)[:count].view(x.shape) >= self.threshold
        return x * keep.to(x.dtype).mul_(self.scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_word_dropout(model: Any) -> int:
    """Swap the ``nn.Dropout`` of every peft LoRA layer for ``WordDropout``; returns how many."""
    swapped = 0
    for module in model.modules():
        table = getattr(module, "lora_dropout", None)
        if not isinstance(table, nn.ModuleDict):
            continue
        for name, layer in list(table.items()):
            if type(layer) is nn.Dropout and layer.p > 0:
                table[name] = WordDropout(layer.p)
                swapped += 1
    return swapped
