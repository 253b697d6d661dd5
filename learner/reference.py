"""The frozen reference model of the KL penalty, held on every learner rank.

The reference is the policy the RL stage started from (the SFT warm start, or the base
model): each rank loads it from the folder its learner group was built from, on the first PPO
batch (an SFT group never loads it), and never trains it. Each rank keeps a whole copy,
outside DeepSpeed: no gradients, no optimizer state, so it costs the model's weights once more
(under ZeRO-3 the policy is sharded but the reference is not). A resumed run loads it from the
same folder again, not from the checkpoint, so it stays the stage's starting point.

It scores the same rows, in the same micro-batches, as the policy's no-grad pass before the
update (learner/rank.py ``ppo_prepare``), through the same forward (learner/ppo.py), so its
log-probs line up token by token with the policy's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from learner.kl import KLKind, sequence_kl
from learner.models import PolicyWithValue


def load_reference(
    model_path: str | Path, dtype: torch.dtype, autocast_bf16: bool, device: torch.device | str
) -> PolicyWithValue:
    """The frozen reference: the policy at ``model_path``, no value head, eval mode."""
    ref = PolicyWithValue.from_pretrained(model_path, dtype, critic="none")
    ref.autocast_bf16 = autocast_bf16
    ref.requires_grad_(False)
    return ref.eval().to(device)


def row_reward_kl(
    old_logp: torch.Tensor, ref_logp: torch.Tensor, mask: list[bool], kind: KLKind
) -> tuple[float, int]:
    """(summed KL estimate of one response, its token count): old_logp, ref_logp (T,) float,
    mask (T,) bool (the response tokens under the loss)."""
    m = torch.tensor(mask, dtype=torch.bool)[None]
    kl = sequence_kl(old_logp.double()[None], ref_logp.double()[None], m, kind)
    return float(kl[0]), int(m.sum())
