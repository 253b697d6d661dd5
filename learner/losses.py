"""Policy and value losses as small pure functions, chosen by config name through a registry.

Shapes: B = sequences (turns) in the micro-batch, T = response tokens (right-padded), V = vocab.
Log-probs are of the sampled tokens. Masks are bool, True = a real response token.

The study's action is the whole response (turn-level PPO). Its log-prob is

    log pi(a | s) = sum_{answer tokens} log p + thought_coef * sum_{reasoning tokens} log p

with thought_coef = 0.5; `learner.action_span` finds which tokens are which.

Four policies, one interface (``POLICY_LOSSES[name](batch, params) -> (loss, metrics)``):

* ``ppo_turn``  - the study: one ratio per turn from the sequence log-prob above;
* ``ppo_token`` - one ratio per token, loss averaged over all tokens of the micro-batch,
  each token weighted 1 (answer) or thought_coef (reasoning);
* ``grpo``      - one ratio per token, averaged within each sequence then over sequences
  (DeepSeekMath's GRPO), same token weights. Pair it with the ``grpo`` advantage estimator.
* ``dr_grpo``   - one ratio per token, summed within each sequence then averaged over
  sequences: no length normalisation (Dr. GRPO). Pair it with the ``dr_grpo`` advantage
  estimator (no std division).
  With thought_coef = 1 the token losses are their textbook forms.

The token-level losses reduce their per-token terms with a loss aggregation
(learner/aggregation.py); ``params.loss_agg`` overrides each one's own. The ratio clip may be
asymmetric (``clip_eps`` below, ``clip_eps_high`` above: DAPO's clip-higher; a larger upper
bound lets unlikely tokens with a positive advantage grow, which slows entropy collapse).

Regularisers, added to every policy loss: ``kl_coef x`` the KL to the reference model
(learner/kl.py) when the KL goes in the loss, and ``-entropy_coef x`` the aggregated entropy
of the policy over the response tokens (learner/entropy.py). The entropy, when given, is
always reported as a metric (``entropy``, token mean), whatever its coefficient.

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

from learner.aggregation import LOSS_AGGREGATIONS, masked_mean
from learner.kl import KLKind, kl_penalty, mean_token_kl

LOG_RATIO_CLAMP = 20.0  # |log ratio| cap before exp: e^20 never occurs in healthy training,
# but a sum over 512 tokens can reach e^100 after a bad step; inf would poison the gradient.
IS_WEIGHT_CLIP = 2.0  # default truncation C of importance weights (TIS uses 2)

Level = Literal["sequence", "token"]


def _reduce_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    return x.mean() if mask is None else masked_mean(x, mask)


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
    logp_new: Tensor,
    logp_old: Tensor,
    advantages: Tensor,
    clip_eps: float,
    clip_eps_high: float | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-item clipped PPO loss  -min(r A, clip(r, 1-eps, 1+eps_high) A),  r = exp(new - old).

    eps_high = clip_eps_high, or clip_eps when None (the symmetric clip).
    logp_new (B,) or (B, T) float, logp_old same shape, advantages (B,) or same shape
    (a (B,) advantage is broadcast over tokens) -> (loss, ratio, clipped), all that shape;
    ``clipped`` is True where the clipped branch is active (its gradient is zero).
    """
    high = clip_eps if clip_eps_high is None else clip_eps_high
    if advantages.dim() == 1 and logp_new.dim() == 2:
        advantages = advantages.unsqueeze(1)  # (B, 1): one advantage for every token of a turn
    log_ratio = (logp_new - logp_old.detach()).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    ratio = log_ratio.exp()
    adv = advantages.detach()
    unclipped = -adv * ratio
    clipped_loss = -adv * ratio.clamp(1.0 - clip_eps, 1.0 + high)
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
    reduction: str | None = None,
    clip_eps_high: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Clipped PPO surrogate, reduced to a scalar loss.

    level "sequence": logp (B,) turn log-probs, advantages (B,), mask unused; plain mean.
    level "token": logp (B, T), advantages (B,) or (B, T), mask (B, T) bool; ``reduction``
    names a loss aggregation (learner/aggregation.py; default "token-mean"). ``weights``:
    importance weights from `importance_weights`, (B,) or (B, T), multiplied in before the
    reduction. ``clip_eps_high``: the upper clip (None = clip_eps).
    Metrics: clip_frac (share of items whose clipped branch is active), approx_kl (k3
    estimate of KL(pi_old || pi_new)), ratio_mean.
    """
    if level == "token" and (mask is None or logp_new.dim() != 2):
        raise ValueError("level='token' needs (B, T) log-probs and a (B, T) mask")
    if level == "sequence" and logp_new.dim() != 1:
        raise ValueError(f"level='sequence' needs (B,) log-probs, got {tuple(logp_new.shape)}")
    item_mask = mask if level == "token" else None
    loss_items, ratio, clipped = ppo_clip_objective(
        logp_new, logp_old, advantages, clip_eps, clip_eps_high
    )
    loss_items = apply_importance_weights(loss_items, weights)
    if item_mask is None:
        loss = loss_items.mean()
    else:
        loss = LOSS_AGGREGATIONS[reduction or "token-mean"](loss_items, item_mask)
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


# --------------------------------------------------------------------------- value


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
    entropy: Tensor | None = None  # (B, T) float, policy entropy at each response position
    # (with its graph when entropy_coef > 0); None = not computed, no entropy metric


@dataclass(frozen=True)
class PolicyLossParams:
    """Settings shared by the policy losses."""

    clip_eps: float = 0.1  # PPO ratio clip, lower side 1 - eps (the study: 0.1, symmetric)
    clip_eps_high: float | None = None  # upper side 1 + eps_high; None = clip_eps
    thought_coef: float = 0.5  # weight of reasoning tokens (the study: 0.5)
    kl_coef: float = 0.0  # weight of the KL to the reference model in the loss (the study: none)
    kl_estimator: KLKind = "k3"  # per-token KL estimator (learner/kl.py)
    entropy_coef: float = 0.0  # weight of the entropy bonus (subtracted from the loss)
    loss_agg: str | None = None  # loss aggregation by name; None = the policy loss's own
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


def add_regularisers(
    loss: Tensor,
    metrics: dict[str, Tensor],
    batch: PolicyLossInput,
    params: PolicyLossParams,
    agg: str,
) -> Tensor:
    """loss + kl_coef x KL(pi || ref) - entropy_coef x H, both aggregated by ``agg`` over
    the response tokens; the entropy metric (token mean) whenever the entropy is given."""
    mask = batch.answer_mask | batch.reasoning_mask  # (B, T) response tokens
    if params.kl_coef != 0.0:
        if batch.ref_logp is None:
            raise ValueError("PolicyLossInput.ref_logp: required when kl_coef > 0")
        kl = kl_penalty(batch.logp, batch.ref_logp, mask, params.kl_estimator, agg)
        # The metric is the per-token mean whatever the aggregation, comparable across losses
        # and with the reward-side KL's.
        metrics["kl_ref"] = mean_token_kl(
            batch.logp.detach(), batch.ref_logp, mask, params.kl_estimator
        )
        loss = loss + params.kl_coef * kl
    if batch.entropy is not None:
        metrics["entropy"] = masked_mean(batch.entropy.detach(), mask)
        if params.entropy_coef != 0.0:
            loss = loss - params.entropy_coef * LOSS_AGGREGATIONS[agg](batch.entropy, mask)
    elif params.entropy_coef != 0.0:
        raise ValueError("PolicyLossInput.entropy: required when entropy_coef > 0")
    return loss


def _token_level_loss(
    batch: PolicyLossInput, params: PolicyLossParams, default_agg: str
) -> tuple[Tensor, dict[str, Tensor]]:
    agg = params.loss_agg or default_agg
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
        reduction=agg,
        clip_eps_high=params.clip_eps_high,
    )
    metrics.update(ppo_metrics)
    return add_regularisers(loss, metrics, batch, params, agg), metrics


@register_policy_loss("ppo_turn")
def ppo_turn_loss(
    batch: PolicyLossInput, params: PolicyLossParams
) -> tuple[Tensor, dict[str, Tensor]]:
    """The study's turn-level PPO: one ratio per response from `sequence_logprob`. One item
    per turn, plain mean; ``loss_agg`` (default token-mean) applies to the KL and entropy."""
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
        new,
        old,
        batch.advantages,
        params.clip_eps,
        level="sequence",
        weights=weights,
        clip_eps_high=params.clip_eps_high,
    )
    metrics.update(ppo_metrics)
    return add_regularisers(loss, metrics, batch, params, params.loss_agg or "token-mean"), metrics


@register_policy_loss("ppo_token")
def ppo_token_loss(
    batch: PolicyLossInput, params: PolicyLossParams
) -> tuple[Tensor, dict[str, Tensor]]:
    """Token-level PPO, averaged over every response token of the micro-batch."""
    return _token_level_loss(batch, params, "token-mean")


@register_policy_loss("grpo")
def grpo_loss(batch: PolicyLossInput, params: PolicyLossParams) -> tuple[Tensor, dict[str, Tensor]]:
    """GRPO: token-level clip, mean over each sequence's tokens, then over sequences."""
    return _token_level_loss(batch, params, "seq-mean-token-mean")


@register_policy_loss("dr_grpo")
def dr_grpo_loss(
    batch: PolicyLossInput, params: PolicyLossParams
) -> tuple[Tensor, dict[str, Tensor]]:
    """Dr. GRPO: token-level clip, summed over each sequence's tokens (no 1/|o_i|), then
    averaged over sequences."""
    return _token_level_loss(batch, params, "seq-mean-token-sum")
