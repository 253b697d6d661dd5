"""Learning-rate schedules as pure functions of the optimizer step (tested alone)."""

from __future__ import annotations

import math

from learner.config import LearnerConfig


def lr_multiplier(step: int, cfg: LearnerConfig) -> float:
    """Factor on cfg.lr before optimizer step ``step`` (0-based): linear warmup, then shape.

    warmup: (step + 1) / warmup_steps, so the first step already moves (lr / warmup_steps).
    cosine / linear: from 1 at the end of warmup to min_lr_ratio at total_steps, then flat.
    """
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant" or cfg.total_steps == 0:
        return 1.0
    span = cfg.total_steps - cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    if cfg.lr_schedule == "cosine":
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        shape = 1.0 - progress
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * shape
