"""Test and check helpers of a learner rank (a mixin of learner/rank.py's LearnerRank):
sampling with HF generate, a raw next-token step, and the full gradients of one SFT
micro-batch. They use the rank's engine, tokenizer and collate, and never its PPO state.
"""

from __future__ import annotations

from typing import Any

import torch

from learner.batching import TrainRow
from learner.ppo import sft_loss


class RankToolsMixin:
    """Needs ``engine``, ``tokenizer``, ``counters``, ``_pack`` and ``_collate`` (LearnerRank)."""

    engine: Any
    tokenizer: Any
    counters: Any
    _pack: bool
    _collate: Any

    def sft_gradients(self, rows: list[TrainRow], share_prefixes: bool) -> dict[str, Any]:
        """The SFT loss of one micro-batch and every parameter's full gradient, without an
        optimizer step (the gradients are cleared after): a check that shared-prefix packing
        is exact on this rank's engine (ZeRO-3 shards included). Collective under ZeRO-3."""
        from deepspeed.utils import safe_get_full_grad

        pack, self._pack = self._pack, share_prefixes and self._pack
        try:
            self.engine.train()
            batch = self._collate(rows, [None] * len(rows))
            loss, _ = sft_loss(self.engine, batch)
            self.engine.backward(loss)
            grads = {
                name: safe_get_full_grad(p).detach().float().cpu().clone()
                for name, p in self.engine.module.named_parameters()
                if p.requires_grad
            }
            self.engine.optimizer.zero_grad()
        finally:
            self._pack = pack
        return {"loss": float(loss.detach()), "tokens": batch.processed_tokens, "grads": grads}

    def sample(
        self, prompt_ids: list[int], n: int, max_new_tokens: int, temperature: float, seed: int
    ) -> list[dict[str, Any]]:
        """n sampled responses to one prompt with HF generate (ZeRO 0-2; tests, HF fallback).

        Each: response_token_ids (up to and including EOS), behaviour_logprobs, response_text.
        """
        from learner.generate import sample_responses

        policy = self.engine.module.policy
        return sample_responses(
            policy, self.tokenizer, prompt_ids, n, max_new_tokens, temperature, seed
        )

    def train_lm_step(self, input_ids: list[list[int]]) -> dict[str, float]:
        """One optimizer step of next-token loss on raw ids (smoke tests)."""
        batch = torch.tensor(input_ids, dtype=torch.long, device=self.engine.device)
        logits, _ = self.engine(
            input_ids=batch,
            attention_mask=torch.ones_like(batch),
            position_ids=torch.arange(batch.shape[1]).expand_as(batch),
            num_logits=0,  # 0 = every position
        )
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), batch[:, 1:].flatten()
        )
        self.engine.backward(loss)
        self.engine.step()
        self.counters.step += 1
        return {"loss": float(loss.detach())}
