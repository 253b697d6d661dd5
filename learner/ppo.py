"""Per-micro-batch losses of the learner: PPO (any registered policy loss + value loss) and
SFT cross-entropy. The rank owns the loop; these functions own the math glue between a
ModelBatch, the model and the pure losses of learner/losses.py.

Shapes: B rows, T response tokens (right-aligned, see learner/batching.py), V vocab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from learner.aggregation import masked_mean
from learner.batching import ModelBatch
from learner.config import PPOConfig
from learner.entropy import gather_token_entropy
from learner.losses import POLICY_LOSSES, PolicyLossInput, PolicyLossParams, value_loss
from learner.token_logprobs import gather_token_logprobs


@dataclass
class PPOTargets:
    """What the update compares against, fixed at the start of the update."""

    old_logp: Tensor | None  # (B, T) float, log p of the response under the learner before
    # the update; None = the update's own forward, detached (exact when the weights cannot have
    # moved since the batch was drawn: learner/rank.py _old_logp_is_own_forward)
    old_values: Tensor  # (B,) float, V(s) before the update (zeros without a critic)
    advantages: Tensor  # (B,) float, one per turn (0 on padding rows)
    returns: Tensor  # (B,) float, value targets
    ref_logp: Tensor | None = None  # (B, T) float, log p under the frozen reference model
    # (computed before the update); None = no KL in the loss


def forward_logprobs(
    model: nn.Module, batch: ModelBatch, temperature: float = 1.0, with_values: bool = True
) -> tuple[Tensor, Tensor | None]:
    """(log p of each response token (B, T) float32, values (B,) or None) in one pass."""
    logp, values, _ = forward_policy(model, batch, temperature, with_values, entropy=None)
    return logp, values


def forward_policy(
    model: nn.Module,
    batch: ModelBatch,
    temperature: float = 1.0,
    with_values: bool = True,
    entropy: Literal["grad", "detached"] | None = None,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """(log p (B, T), values (B,) or None, entropy (B, T) or None) in one model pass.

    ``entropy``: "grad" = the per-position entropy of softmax(logits / T) with its graph (an
    entropy bonus trains it), "detached" = the same without a graph (only logged), None = not
    computed. Both go through the logits chunk by chunk (learner/entropy.py).
    """
    logits, values = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        num_logits=batch.num_logits,
        value_index=batch.value_index if with_values else None,
        pixel_values=batch.pixel_values,
        image_inputs=batch.image_inputs,
        placeholder_mask=batch.placeholder_mask,
        logit_index=batch.logit_index,
        pack_layout=batch.pack_layout,
    )
    # Kept logits cover the last T+1 positions: position j predicts response token j, the
    # last one predicts past the response and is ignored (no copy to cut it off).
    logp = gather_token_logprobs(logits, batch.response_ids, temperature)
    ent = None
    if entropy is not None:
        width = batch.response_ids.shape[1]
        if entropy == "grad":
            ent = gather_token_entropy(logits, width, temperature)
        else:
            with torch.no_grad():
                ent = gather_token_entropy(logits.detach(), width, temperature)
    return logp, values, ent


def policy_params(cfg: PPOConfig) -> PolicyLossParams:
    """The policy loss's settings from the config (the KL in the loss only with kl_mode loss:
    in the reward it is already in the advantages)."""
    return PolicyLossParams(
        clip_eps=cfg.clip_eps if cfg.clip_eps_low is None else cfg.clip_eps_low,
        clip_eps_high=cfg.clip_eps_high,
        thought_coef=cfg.thought_coef,
        kl_coef=cfg.kl_coef if cfg.kl_mode == "loss" else 0.0,
        kl_estimator=cfg.kl_estimator,
        entropy_coef=cfg.entropy_coef,
        loss_agg=cfg.loss_agg,
        is_clip=cfg.is_clip,
    )


def ppo_loss(
    model: nn.Module, batch: ModelBatch, targets: PPOTargets, cfg: PPOConfig
) -> tuple[Tensor, dict[str, Tensor]]:
    """Policy loss (by registry name) + vf_coef x clipped value loss; metrics detached."""
    with_values = getattr(model, "value_head", None) is not None
    # The entropy is always computed for the metric; its graph only when it is trained.
    logp, values, entropy = forward_policy(
        model, batch, cfg.temperature, with_values, "grad" if cfg.entropy_coef > 0 else "detached"
    )
    old_logp = logp.detach() if targets.old_logp is None else targets.old_logp
    behaviour = None
    if batch.behaviour_logp is not None and batch.use_behaviour is not None:
        # Fresh rows use pi_old as their behaviour policy: weight exp(0) = 1, no correction.
        stale = batch.use_behaviour.unsqueeze(1)  # (B, 1)
        behaviour = torch.where(stale, batch.behaviour_logp, old_logp)
    loss_in = PolicyLossInput(
        logp=logp,
        old_logp=old_logp,
        advantages=targets.advantages,
        answer_mask=batch.answer_mask,
        reasoning_mask=batch.reasoning_mask,
        behaviour_logp=behaviour,
        ref_logp=targets.ref_logp,
        entropy=entropy,
    )
    loss, metrics = POLICY_LOSSES[cfg.policy_loss](loss_in, policy_params(cfg))
    metrics["policy_loss"] = loss.detach()
    if values is not None:
        real = batch.row_weight > 0  # (B,) padding rows never train the critic
        v_loss, v_metrics = value_loss(
            values, targets.old_values, targets.returns, cfg.value_clip_eps, mask=real
        )
        metrics.update(v_metrics)
        metrics["value_loss"] = v_loss.detach()
        metrics["value_mean"] = masked_mean(values.detach(), real)
        loss = loss + cfg.vf_coef * v_loss
    metrics["loss"] = loss.detach()
    return loss, metrics


def sft_loss(model: nn.Module, batch: ModelBatch) -> tuple[Tensor, dict[str, Tensor]]:
    """Mean next-token cross-entropy over the trained (assistant) tokens of the micro-batch."""
    logp, _ = forward_logprobs(model, batch, with_values=False)
    loss = -masked_mean(logp, batch.answer_mask)
    return loss, {"loss": loss.detach()}
