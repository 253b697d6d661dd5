"""Policy and value losses as small pure functions, chosen by config name through a registry.

Shapes: B = sequences (turns) in the micro-batch, T = response tokens (right-padded), V = vocab.
Log-probs are of the sampled tokens. Masks are bool, True = a real response token.

The study's action is the whole response (turn-level PPO). Its log-prob is

    log pi(a | s) = sum_{answer tokens} log p + thought_coef * sum_{reasoning tokens} log p

with thought_coef = 0.5; `learner.action_span` finds which tokens are which.

Three policies, one interface (``POLICY_LOSSES[name](batch, params) -> (loss, metrics)``):

* ``ppo_turn``  - the study: one ratio per turn from the sequence log-prob above;
* ``ppo_token`` - one ratio per token, loss averaged over all tokens of the micro-batch,
  each token weighted 1 (answer) or thought_coef (reasoning);
* ``grpo``      - one ratio per token, averaged within each sequence then over sequences
  (DeepSeekMath's GRPO), same token weights. Pair it with the ``grpo`` advantage estimator.
  With thought_coef = 1 the token losses are their textbook forms.

Stale data. Three policies are involved when rollouts lag the learner: the behaviour policy
mu that sampled the data (an older weight version, and a different numeric engine), the
learner's policy at the start of this update pi_old, and the policy being optimised pi_theta.
PPO's ratio pi_theta / pi_old keeps updates near pi_old; the samples themselves come from mu,
so each item's clipped surrogate is multiplied by a truncated importance weight

    w = min(pi_old / mu, C)          (detached: a constant per item)

as IMPALA's V-trace truncates rho, and as truncated importance sampling (TIS) corrects the
rollout-engine/learner mismatch. Truncation at C bounds the variance; the bias it adds
shrinks as the data gets fresher. Without behaviour log-probs, w = 1.

Metrics are detached 0-d tensors (no host sync per micro-batch), unprefixed; the trainer
logs them under ``learner/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

LOG_RATIO_CLAMP = 20.0  # |log ratio| cap before exp: e^20 never occurs in healthy training,
# but a sum over 512 tokens can reach e^100 after a bad step; inf would poison the gradient.
IS_WEIGHT_CLIP = 2.0  # default truncation C of importance weights (TIS uses 2)

Level = Literal["sequence", "token"]
Reduction = Literal["mean", "token_mean", "seq_mean_token_mean"]
KLKind = Literal["k1", "k2", "k3"]


# --------------------------------------------------------------------------- reductions


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of x where mask is True. x (B, T) float, mask (B, T) bool -> () or reduced dim."""
    m = mask.to(x.dtype)
    if dim is None:
        return (x * m).sum() / m.sum().clamp(min=1.0)
    return (x * m).sum(dim) / m.sum(dim).clamp(min=1.0)


def _reduce_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    return x.mean() if mask is None else masked_mean(x, mask)


def _reduce_seq_mean_token_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None or x.dim() != 2:
        raise ValueError("seq_mean_token_mean needs (B, T) values and a (B, T) mask")
    return masked_mean(x, mask, dim=1).mean()


# "mean" = plain mean over (B,) items; "token_mean" = one average over every token of the
# micro-batch (long answers weigh more); "seq_mean_token_mean" = each sequence counts once.
REDUCTIONS: dict[str, Callable[[Tensor, Tensor | None], Tensor]] = {
    "mean": _reduce_mean,
    "token_mean": _reduce_mean,
    "seq_mean_token_mean": _reduce_seq_mean_token_mean,
}


def thought_weights(answer_mask: Tensor, reasoning_mask: Tensor, thought_coef: float) -> Tensor:
    """Per-token weight: 1 on answer tokens, thought_coef on reasoning tokens, 0 on padding.

    answer_mask (B, T) bool, reasoning_mask (B, T) bool (disjoint) -> (B, T) float32.
    """
    if bool((answer_mask & reasoning_mask).any()):
        raise ValueError("answer_mask and reasoning_mask overlap")
    return answer_mask.float() + thought_coef * reasoning_mask.float()


def sequence_logprob(
    token_logprobs: Tensor, answer_mask: Tensor, reasoning_mask: Tensor, thought_coef: float = 0.5
) -> Tensor:
    """The turn-level action log-prob: answer tokens + thought_coef * reasoning tokens.

    token_logprobs (B, T) float, answer_mask (B, T) bool, reasoning_mask (B, T) bool -> (B,).
    """
    weights = thought_weights(answer_mask, reasoning_mask, thought_coef)  # (B, T)
    return (token_logprobs * weights.to(token_logprobs.dtype)).sum(-1)


# --------------------------------------------------------------------------- PPO surrogate


def ppo_clip_objective(
    logp_new: Tensor, logp_old: Tensor, advantages: Tensor, clip_eps: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-item clipped PPO loss  -min(r A, clip(r, 1-eps, 1+eps) A),  r = exp(new - old).

    logp_new (B,) or (B, T) float, logp_old same shape, advantages (B,) or same shape
    (a (B,) advantage is broadcast over tokens) -> (loss, ratio, clipped), all that shape;
    ``clipped`` is True where the clipped branch is active (its gradient is zero).
    """
    if advantages.dim() == 1 and logp_new.dim() == 2:
        advantages = advantages.unsqueeze(1)  # (B, 1): one advantage for every token of a turn
    log_ratio = (logp_new - logp_old.detach()).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    ratio = log_ratio.exp()
    adv = advantages.detach()
    unclipped = -adv * ratio
    clipped_loss = -adv * ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps)
    loss = torch.maximum(unclipped, clipped_loss)
    return loss, ratio, clipped_loss > unclipped


def apply_importance_weights(per_item_loss: Tensor, weights: Tensor | None) -> Tensor:
    """Off-policy correction: scale each item's surrogate by its (detached) weight.

    per_item_loss (B,) or (B, T) float; weights (B,) (one per sequence, broadcast over
    tokens) or the loss's shape; None = on-policy data, loss unchanged.
    """
    if weights is None:
        return per_item_loss
    w = weights.detach()
    if w.dim() == 1 and per_item_loss.dim() == 2:
        w = w.unsqueeze(1)
    row_broadcast = per_item_loss.dim() == 2 and w.shape == (per_item_loss.shape[0], 1)
    if w.shape != per_item_loss.shape and not row_broadcast:
        raise ValueError(f"weights {tuple(w.shape)} do not fit loss {tuple(per_item_loss.shape)}")
    return per_item_loss * w


def ppo_clip_loss(
    logp_new: Tensor,
    logp_old: Tensor,
    advantages: Tensor,
    clip_eps: float,
    mask: Tensor | None = None,
    level: Level = "sequence",
    weights: Tensor | None = None,
    reduction: Reduction | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Clipped PPO surrogate, reduced to a scalar loss.

    level "sequence": logp (B,) turn log-probs, advantages (B,), mask unused; plain mean.
    level "token": logp (B, T), advantages (B,) or (B, T), mask (B, T) bool; reduction
    "token_mean" (default) or "seq_mean_token_mean". ``weights``: importance weights from
    `importance_weights`, (B,) or (B, T), multiplied in before the reduction.
    Metrics: clip_frac (share of items whose clipped branch is active), approx_kl (k3
    estimate of KL(pi_old || pi_new)), ratio_mean.
    """
    if level == "token" and (mask is None or logp_new.dim() != 2):
        raise ValueError("level='token' needs (B, T) log-probs and a (B, T) mask")
    if level == "sequence" and logp_new.dim() != 1:
        raise ValueError(f"level='sequence' needs (B,) log-probs, got {tuple(logp_new.shape)}")
    item_mask = mask if level == "token" else None
    reduce = REDUCTIONS[reduction or ("token_mean" if level == "token" else "mean")]
    loss_items, ratio, clipped = ppo_clip_objective(logp_new, logp_old, advantages, clip_eps)
    loss = reduce(apply_importance_weights(loss_items, weights), item_mask)
    with torch.no_grad():
        log_ratio = (logp_new - logp_old).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
        metrics = {
            "clip_frac": _reduce_mean(clipped.to(ratio.dtype), item_mask),
            "approx_kl": _reduce_mean(ratio - 1.0 - log_ratio, item_mask),
            "ratio_mean": _reduce_mean(ratio, item_mask),
        }
    return loss, metrics


# --------------------------------------------------------------------------- importance weights


@torch.no_grad()
def importance_weights(
    logp_old_learner: Tensor,
    logp_behaviour: Tensor,
    clip: float = IS_WEIGHT_CLIP,
    mask: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Truncated importance weights w = min(exp(logp_old - logp_behaviour), clip).

    Per sequence: (B,) turn log-probs (use `sequence_logprob` with the same thought_coef on
    both). Per token: (B, T) with mask (B, T) bool; masked-out tokens get weight 1.
    Returns (weights, metrics: is_weight_mean before truncation, is_clip_frac).
    """
    log_w = (logp_old_learner - logp_behaviour).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    raw = log_w.exp()
    w = raw.clamp(max=clip)
    if mask is not None:
        w = torch.where(mask.bool(), w, torch.ones_like(w))
    metrics = {
        "is_weight_mean": _reduce_mean(raw, mask),
        "is_clip_frac": _reduce_mean((raw > clip).to(raw.dtype), mask),
    }
    return w, metrics


# --------------------------------------------------------------------------- value, entropy, KL


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    clip_eps: float,
    mask: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Clipped value loss 0.5 * mean(max((V - R)^2, (V_old + clip(V - V_old, +-eps) - R)^2)).

    values, old_values, returns (B,) float (one value per turn: the head reads the last prompt
    token); optional mask (B,) bool. Metrics: vf_clip_frac, explained_var of the returns.
    """
    old = old_values.detach()
    ret = returns.detach()
    v_clipped = old + (values - old).clamp(-clip_eps, clip_eps)
    err_unclipped = (values - ret).square()
    err_clipped = (v_clipped - ret).square()
    loss = 0.5 * _reduce_mean(torch.maximum(err_unclipped, err_clipped), mask)
    with torch.no_grad():
        ret_var = _reduce_mean((ret - _reduce_mean(ret, mask)).square(), mask)
        resid = ret - values
        resid_var = _reduce_mean((resid - _reduce_mean(resid, mask)).square(), mask)
        metrics = {
            "vf_clip_frac": _reduce_mean((err_clipped > err_unclipped).to(values.dtype), mask),
            "explained_var": 1.0 - resid_var / ret_var.clamp(min=1e-8),
        }
    return loss, metrics


def token_entropy(logits: Tensor) -> Tensor:
    """Entropy of softmax(logits) per position: logits (..., V) -> (...).

    H = logsumexp(l) - sum softmax(l) * l, which avoids log(0) for tiny probabilities.
    """
    lf = logits.float()
    return torch.logsumexp(lf, dim=-1) - (lf.softmax(-1) * lf).sum(-1)


def entropy_from_logits(logits: Tensor, mask: Tensor) -> Tensor:
    """Mean token entropy over the response: logits (B, T, V), mask (B, T) bool -> ().

    Builds a (B, T, V) softmax; chunk over B for large vocabularies.
    """
    return masked_mean(token_entropy(logits), mask)


def _kl_k1(log_ratio: Tensor) -> Tensor:
    return log_ratio


def _kl_k2(log_ratio: Tensor) -> Tensor:
    return 0.5 * log_ratio.square()


def _kl_k3(log_ratio: Tensor) -> Tensor:
    neg = (-log_ratio).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # ref - logp
    return neg.exp() - neg - 1.0


# Estimators of KL(pi || pi_ref) from x = log pi - log pi_ref at tokens sampled from pi
# (Schulman, "Approximating KL divergence"): k1 unbiased, can be negative; k2 biased, low
# variance; k3 = exp(-x) + x - 1, unbiased and always >= 0 (GRPO's choice).
KL_ESTIMATORS: dict[str, Callable[[Tensor], Tensor]] = {"k1": _kl_k1, "k2": _kl_k2, "k3": _kl_k3}


def kl_penalty(logp: Tensor, ref_logp: Tensor, mask: Tensor, kind: KLKind = "k3") -> Tensor:
    """Masked mean KL estimate to a reference model: logp, ref_logp (B, T), mask (B, T) -> ()."""
    return masked_mean(KL_ESTIMATORS[kind](logp - ref_logp.detach()), mask)


# --------------------------------------------------------------------------- policy losses


@dataclass(frozen=True)
class PolicyLossInput:
    """What every policy loss reads; token tensors are right-padded to T."""

    logp: Tensor  # (B, T) float, log p of sampled tokens under the policy being optimised
    old_logp: Tensor  # (B, T) float, same under the learner's policy at the update's start
    advantages: Tensor  # (B,) float, one advantage per turn
    answer_mask: Tensor  # (B, T) bool, True = token of the answer (and what follows it)
    reasoning_mask: Tensor  # (B, T) bool, True = reasoning token before the answer
    behaviour_logp: Tensor | None = None  # (B, T) float, rollout engine's log p; None = fresh
    ref_logp: Tensor | None = None  # (B, T) float, reference model's log p (for kl_coef > 0)


@dataclass(frozen=True)
class PolicyLossParams:
    """Settings shared by the policy losses."""

    clip_eps: float = 0.1  # PPO ratio clip (the study: 0.1)
    thought_coef: float = 0.5  # weight of reasoning tokens (the study: 0.5)
    kl_coef: float = 0.0  # weight of the KL to the reference model (the study: none)
    kl_kind: KLKind = "k3"
    is_clip: float | None = IS_WEIGHT_CLIP  # truncation C of importance weights; None = no
    # correction even when behaviour log-probs are present


PolicyLossFn = Callable[[PolicyLossInput, PolicyLossParams], tuple[Tensor, dict[str, Tensor]]]
POLICY_LOSSES: dict[str, PolicyLossFn] = {}


def register_policy_loss(name: str) -> Callable[[PolicyLossFn], PolicyLossFn]:
    """Decorator: make a policy loss selectable as ``POLICY_LOSSES[name]``."""

    def wrap(fn: PolicyLossFn) -> PolicyLossFn:
        if name in POLICY_LOSSES:
            raise ValueError(f"policy loss {name!r} is registered twice")
        POLICY_LOSSES[name] = fn
        return fn

    return wrap


def _add_kl(
    loss: Tensor,
    metrics: dict[str, Tensor],
    batch: PolicyLossInput,
    params: PolicyLossParams,
    mask: Tensor,
) -> Tensor:
    if params.kl_coef == 0.0:
        return loss
    if batch.ref_logp is None:
        raise ValueError("PolicyLossInput.ref_logp: required when kl_coef > 0")
    kl = kl_penalty(batch.logp, batch.ref_logp, mask, params.kl_kind)
    metrics["kl_ref"] = kl.detach()
    return loss + params.kl_coef * kl


def _token_level_loss(
    batch: PolicyLossInput, params: PolicyLossParams, reduction: Reduction
) -> tuple[Tensor, dict[str, Tensor]]:
    mask = batch.answer_mask | batch.reasoning_mask  # (B, T) response tokens
    token_w = thought_weights(batch.answer_mask, batch.reasoning_mask, params.thought_coef)
    metrics: dict[str, Tensor] = {}
    weights = token_w.to(batch.logp.dtype)
    if batch.behaviour_logp is not None and params.is_clip is not None:
        is_w, is_metrics = importance_weights(
            batch.old_logp, batch.behaviour_logp, params.is_clip, mask
        )
        weights = weights * is_w
        metrics.update(is_metrics)
    loss, ppo_metrics = ppo_clip_loss(
        batch.logp,
        batch.old_logp,
        batch.advantages,
        params.clip_eps,
        mask=mask,
        level="token",
        weights=weights,
        reduction=reduction,
    )
    metrics.update(ppo_metrics)
    return _add_kl(loss, metrics, batch, params, mask), metrics


@register_policy_loss("ppo_turn")
def ppo_turn_loss(
    batch: PolicyLossInput, params: PolicyLossParams
) -> tuple[Tensor, dict[str, Tensor]]:
    """The study's turn-level PPO: one ratio per response from `sequence_logprob`."""
    mask = batch.answer_mask | batch.reasoning_mask  # (B, T) response tokens, for the KL term
    token_w = thought_weights(batch.answer_mask, batch.reasoning_mask, params.thought_coef)
    token_w = token_w.to(batch.logp.dtype)
    new, old = (batch.logp * token_w).sum(-1), (batch.old_logp * token_w).sum(-1)  # (B,) each
    metrics: dict[str, Tensor] = {}
    weights = None
    if batch.behaviour_logp is not None and params.is_clip is not None:
        behaviour = (batch.behaviour_logp * token_w).sum(-1)  # (B,) same action definition
        weights, is_metrics = importance_weights(old, behaviour, params.is_clip)
        metrics.update(is_metrics)
    loss, ppo_metrics = ppo_clip_loss(
        new, old, batch.advantages, params.clip_eps, level="sequence", weights=weights
    )
    metrics.update(ppo_metrics)
    return _add_kl(loss, metrics, batch, params, mask), metrics


@register_policy_loss("ppo_token")
def ppo_token_loss(
    batch: PolicyLossInput, params: PolicyLossParams
) -> tuple[Tensor, dict[str, Tensor]]:
    """Token-level PPO, averaged over every response token of the micro-batch."""
    return _token_level_loss(batch, params, "token_mean")


@register_policy_loss("grpo")
def grpo_loss(batch: PolicyLossInput, params: PolicyLossParams) -> tuple[Tensor, dict[str, Tensor]]:
    """GRPO: token-level clip, mean over each sequence's tokens, then over sequences."""
    return _token_level_loss(batch, params, "seq_mean_token_mean")
