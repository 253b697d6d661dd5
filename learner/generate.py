"""HF sampling with the learner's own policy (tests, and a fallback when no engine runs)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def sample_responses(
    policy: nn.Module,
    tokenizer: Any,
    prompt_ids: list[int],
    n: int,
    max_new_tokens: int,
    temperature: float,
    seed: int,
) -> list[dict[str, Any]]:
    """n sampled responses to one prompt: response_token_ids (up to and including EOS),
    behaviour_logprobs (under softmax(logits / temperature)), response_text."""
    device = next(policy.parameters()).device
    torch.manual_seed(seed)
    ids = torch.tensor([prompt_ids] * n, device=device)
    with torch.no_grad():
        out = policy.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            temperature=temperature,
            top_k=0,
            max_new_tokens=max_new_tokens,
            output_logits=True,
            return_dict_in_generate=True,
        )
    new = out.sequences[:, ids.shape[1] :]
    logp = torch.stack(out.logits, 1).float().div(temperature).log_softmax(-1)
    logp = logp.gather(-1, new.unsqueeze(-1)).squeeze(-1)
    eos = tokenizer.eos_token_id
    results = []
    for i in range(n):
        toks = new[i].tolist()
        end = toks.index(eos) + 1 if eos in toks else len(toks)
        results.append(
            {
                "response_token_ids": toks[:end],
                "behaviour_logprobs": logp[i, :end].tolist(),
                "response_text": tokenizer.decode(toks[:end], skip_special_tokens=True),
            }
        )
    return results
