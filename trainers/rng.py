"""Every random number generator a training step draws from, captured and restored as one value.

Python's and numpy's states are stored as lists and tensors, so the checkpoint file loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
from typing import Any


def capture_rng() -> dict[str, Any]:
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [list(item) if isinstance(item, tuple) else item for item in random.getstate()],
        "numpy": [kind, torch.from_numpy(np.array(keys)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
