"""RMSNorm through torch's native kernel instead of six separate tensor operations.

The Llama family's ``*RMSNorm.forward`` upcasts, squares, averages, adds epsilon, takes rsqrt and
multiplies, each a separate kernel forward and again backward. ``torch.nn.functional.rms_norm``
does the normalisation in one kernel; the weight is applied the same way the model does it (after
casting back to the input dtype), so only the rounding of the sum can differ.
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F

# Norms whose forward is exactly ``weight * normalise(x.float()).to(x.dtype)``; Gemma's (1 + weight)
# and others are left alone.
PLAIN_RMSNORMS = frozenset({"LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm"})


def _fused_forward(self: Any, hidden: torch.Tensor) -> torch.Tensor:
    shape = (hidden.shape[-1],)
    if hidden.dtype == torch.float32 and self.weight.dtype == torch.float32:
        return F.rms_norm(hidden, shape, self.weight, self.variance_epsilon)
    normed = F.rms_norm(hidden.float(), shape, None, self.variance_epsilon)
    return self.weight * normed.to(hidden.dtype)


def fuse_rmsnorms(model: torch.nn.Module) -> int:
    """Give every plain RMSNorm of the model the fused forward; returns how many."""
    count = 0
    for module in model.modules():
        if type(module).__name__ in PLAIN_RMSNORMS and hasattr(module, "variance_epsilon"):
            module.forward = types.MethodType(_fused_forward, module)  # type: ignore[method-assign]
            count += 1
    return count
