"""How long a run is and how fast it learns: pure functions of the config and the step.

The learning rate depends on the step alone, so a resumed run follows the same curve as one that
was never stopped.
"""

from __future__ import annotations

import math

from trainers.config import OptimizerSettings, TrainConfig
from trainers.modeling import TrainerError


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
    """Optimiser steps of the whole run: ``train.max_steps``, or the epochs counted in steps."""
    if config.train.max_steps is not None:
        return config.train.max_steps
    assert config.train.epochs is not None
    steps = config.train.epochs * batches_per_epoch / config.train.grad_accum
    if not math.isfinite(steps) or steps > 2**53:
        raise TrainerError(f"train.epochs {config.train.epochs:g} is too many steps to count")
    return max(1, math.ceil(steps))
