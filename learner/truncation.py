"""What happens to a response the engine cut at its token limit (finish_reason "length"),
chosen by config name through a registry (``learner.ppo.truncated_response``).

A cut response never reached its answer, so its verdict says little about the policy's
answer: training on it as if it were a wrong answer pushes the policy away from long
reasoning in general. Three handlings (DAPO's overlong filtering and overlong penalty):

* ``keep``    - train on it like any other turn (the study);
* ``mask``    - its loss weight is 0: no policy or value gradient from it; its reward still
  counts in its group's baseline (the other members were compared with it when sampled);
* ``penalty`` - its reward gets ``penalty`` (<= 0) added before the advantages.

Shapes: rewards (N,) float, truncated (N,) bool -> (rewards (N,), loss_weights (N,) float).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

TRUNCATED_FINISH_REASON = "length"  # vLLM's (and the HF engine's) finish_reason for a cut

TruncationFn = Callable[[Tensor, Tensor, float], tuple[Tensor, Tensor]]
TRUNCATION_HANDLERS: dict[str, TruncationFn] = {}


def register_truncation(name: str) -> Callable[[TruncationFn], TruncationFn]:
    """Decorator: make a handling selectable as ``TRUNCATION_HANDLERS[name]``."""

    def wrap(fn: TruncationFn) -> TruncationFn:
        if name in TRUNCATION_HANDLERS:
            raise ValueError(f"truncation handling {name!r} is registered twice")
        TRUNCATION_HANDLERS[name] = fn
        return fn

    return wrap


@register_truncation("keep")
def keep_truncated(rewards: Tensor, truncated: Tensor, penalty: float) -> tuple[Tensor, Tensor]:
    """Rewards unchanged, every turn trains."""
    return rewards, torch.ones_like(rewards)


@register_truncation("mask")
def mask_truncated(rewards: Tensor, truncated: Tensor, penalty: float) -> tuple[Tensor, Tensor]:
    """Rewards unchanged; truncated turns get loss weight 0."""
    return rewards, (~truncated.bool()).to(rewards.dtype)


@register_truncation("penalty")
def penalise_truncated(rewards: Tensor, truncated: Tensor, penalty: float) -> tuple[Tensor, Tensor]:
    """Truncated turns get ``penalty`` added to their reward; every turn trains."""
    return rewards + penalty * truncated.to(rewards.dtype), torch.ones_like(rewards)


def truncated_flags(finish_reasons: list[str | None]) -> Tensor:
    """(N,) bool: the engine cut the response at its token limit. Rows written before the
    trajectory carried a finish reason (None or "") count as not truncated."""
    return torch.tensor([r == TRUNCATED_FINISH_REASON for r in finish_reasons], dtype=torch.bool)


def shape_rewards(
    rewards: list[float], finish_reasons: list[str | None], mode: str, penalty: float
) -> tuple[list[float], list[float]]:
    """Per turn (reward after the handling, loss weight): the handling ``mode`` applied to
    plain lists, as the learner and the RL stage's refill both see the rewards."""
    shaped, weights = TRUNCATION_HANDLERS[mode](
        torch.tensor(rewards, dtype=torch.float64), truncated_flags(finish_reasons), penalty
    )
    return shaped.tolist(), weights.tolist()
