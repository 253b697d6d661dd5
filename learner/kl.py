"""KL to the reference model (a frozen copy of the policy the RL stage started from), as
small pure functions chosen by config name through a registry (``learner.ppo.kl_estimator``).

The reference's log-probs of the sampled tokens come from the learner ranks (learner/rank.py
holds the frozen copy). Two places to put the penalty (``learner.ppo.kl_mode``):

* ``loss``   - ``kl_coef x aggregate(k(log pi_theta - log pi_ref))`` is added to the policy
  loss, differentiated through pi_theta (GRPO's form, with k3);
* ``reward`` - each turn's reward loses ``kl_coef x sum_t k(log pi_old - log pi_ref)`` before
  the advantages are computed (InstructGPT's / REINFORCE++'s form, usually with k1): the KL
  is then part of the return, not a gradient of its own.

Shapes: logp, ref_logp (B, T) float, mask (B, T) bool (True = response token).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch import Tensor

from learner.aggregation import LOSS_AGGREGATIONS, masked_mean

KLKind = Literal["k1", "k2", "k3"]
LOG_RATIO_CLAMP = 20.0  # |log pi - log ref| cap inside exp (k3): e^20 is never healthy,
# and inf would poison the gradient.

KLEstimatorFn = Callable[[Tensor], Tensor]
KL_ESTIMATORS: dict[str, KLEstimatorFn] = {}


def register_kl_estimator(name: str) -> Callable[[KLEstimatorFn], KLEstimatorFn]:
    """Decorator: make an estimator selectable as ``KL_ESTIMATORS[name]``."""

    def wrap(fn: KLEstimatorFn) -> KLEstimatorFn:
        if name in KL_ESTIMATORS:
            raise ValueError(f"KL estimator {name!r} is registered twice")
        KL_ESTIMATORS[name] = fn
        return fn

    return wrap


# Estimators of KL(pi || pi_ref) from x = log pi - log pi_ref at tokens sampled from pi
# (Schulman, "Approximating KL divergence"). Each maps x elementwise to a per-token estimate.


@register_kl_estimator("k1")
def kl_k1(log_ratio: Tensor) -> Tensor:
    """k1 = x: unbiased, high variance, negative on some tokens."""
    return log_ratio


@register_kl_estimator("k2")
def kl_k2(log_ratio: Tensor) -> Tensor:
    """k2 = x^2 / 2: biased, low variance, >= 0 (its gradient is that of the true KL)."""
    return 0.5 * log_ratio.square()


@register_kl_estimator("k3")
def kl_k3(log_ratio: Tensor) -> Tensor:
    """k3 = exp(-x) + x - 1: unbiased and >= 0 (GRPO's choice)."""
    neg = (-log_ratio).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # ref - logp
    return neg.exp() - neg - 1.0


def token_kl(logp: Tensor, ref_logp: Tensor, kind: KLKind = "k3") -> Tensor:
    """Per-token estimate k(logp - ref): (B, T) -> (B, T); the reference is never trained."""
    return KL_ESTIMATORS[kind](logp - ref_logp.detach())


def kl_penalty(
    logp: Tensor, ref_logp: Tensor, mask: Tensor, kind: KLKind = "k3", agg: str = "token-mean"
) -> Tensor:
    """The loss-side KL term: the per-token estimates aggregated like the policy loss -> ()."""
    return LOSS_AGGREGATIONS[agg](token_kl(logp, ref_logp, kind), mask)


def sequence_kl(logp: Tensor, ref_logp: Tensor, mask: Tensor, kind: KLKind = "k1") -> Tensor:
    """The reward-side KL of each response: sum of the per-token estimates -> (B,).

    The KL of two distributions over whole responses is the sum of the per-token KLs along
    the response, so a turn's penalty grows with its length, as its log-prob does.
    """
    return (token_kl(logp, ref_logp, kind) * mask.to(logp.dtype)).sum(-1)


def mean_token_kl(logp: Tensor, ref_logp: Tensor, mask: Tensor, kind: KLKind = "k1") -> Tensor:
    """The per-token mean estimate over the masked tokens (a metric) -> ()."""
    return masked_mean(token_kl(logp, ref_logp, kind), mask)
