"""Attention over shared-prompt packs that skips the pairs the pack's mask rules out.

A pack (learner/prompt_packing.py) is a prompt of P tokens followed by k responses. Its 4D
mask lets a response token see the prompt and its own response's earlier tokens. Attention
with that mask computes every (query, key) pair of the (P + kT)^2 square and then discards
most of them: a group of 4 responses of 96 tokens on a 200-token prompt keeps a third. On a
CPU the masked flash kernel also runs far below the matrix multiplies' rate, so attention was
a quarter of a packed GRPO update of SmolLM2-135M.

``packed_attention`` computes the same result in two parts per layer:
- the prompts: causal self-attention over the first P_max positions of every pack (P^2/2);
- the responses: each response's queries (N, H, T_max, D) against its pack's prompt keys
  followed by its own keys (N, H, P_max + T_max, D), with a small mask (prompt keys of its pack,
  own keys causally): k T (P + T) pairs.
Both are torch's scaled_dot_product_attention, so the gradient is autograd's.

``PackLayout`` holds the index tensors, built once per micro-batch by ``pack_layout``.
``register`` adds the function to transformers' attention registry under ``ATTENTION_NAME``;
learner/models.py switches a model to it for the packed forward only. Without a layout (an
unpacked forward) the function is transformers' own SDPA attention.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

ATTENTION_NAME = "veriray_packed_sdpa"


@dataclass
class PackLayout:
    """Where the prompts and responses of R packs of length L lie (flat index = r * L + i)."""

    prompt_len: int  # P_max, the longest prompt of the packs
    prompt_mask: Tensor | None  # (R, 1, P_max, P_max) bool; None = all prompts are P_max long
    prompt_src: Tensor  # (n_p,) long, real prompt slots in the (R * P_max) prompt layout
    prompt_dst: Tensor  # (n_p,) long, the same tokens' flat positions in the packs
    response_pack: Tensor  # (N,) long, the pack of each response
    response_index: Tensor  # (N, T_max) long, flat positions of each response's tokens
    # (slots past a response's end repeat a valid position; their output is dropped)
    response_mask: Tensor  # (N, 1, T_max, P_max + T_max) bool, True = query may attend to key
    response_src: Tensor  # (n_r,) long, real slots in the (N * T_max) response layout
    response_dst: Tensor  # (n_r,) long, the same tokens' flat positions in the packs

    def to(self, device: torch.device | str) -> PackLayout:
        """The layout with its tensors on ``device`` (once per forward, not once per layer)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return PackLayout(
            **{k: v.to(device) if isinstance(v, Tensor) else v for k, v in values.items()}
        )


def pack_layout(
    prompt_lens: list[int], responses: list[list[tuple[int, int]]], length: int
) -> PackLayout:
    """The layout of R packs of ``length`` positions: pack r has a prompt of ``prompt_lens[r]``
    tokens at its start and responses at ``responses[r]`` = [(start, tokens), ...]. A response
    of 0 tokens has no queries and is left out."""
    if not prompt_lens or any(p < 1 for p in prompt_lens) or len(responses) != len(prompt_lens):
        raise ValueError(
            f"pack_layout: every pack needs a prompt of >= 1 token, got {prompt_lens} "
            f"for {len(responses)} packs"
        )
    p_max = max(prompt_lens)
    prompt_mask = None
    if any(p != p_max for p in prompt_lens):
        pos = torch.arange(p_max)
        causal = pos[None, :] <= pos[:, None]
        real = pos[None, None, :] < torch.tensor(prompt_lens)[:, None, None]  # (R, 1, P_max)
        prompt_mask = (causal[None] & real) | torch.eye(p_max, dtype=torch.bool)[None]
        prompt_mask = prompt_mask.unsqueeze(1)
    prompt_src = torch.cat([r * p_max + torch.arange(p) for r, p in enumerate(prompt_lens)])
    prompt_dst = torch.cat([r * length + torch.arange(p) for r, p in enumerate(prompt_lens)])

    spans = [(r, s, t) for r, rs in enumerate(responses) for s, t in rs if t > 0]
    t_max = max((t for _, _, t in spans), default=1)
    n = len(spans)
    response_pack = torch.tensor([r for r, _, _ in spans], dtype=torch.long)
    response_index = torch.zeros((n, t_max), dtype=torch.long)
    response_mask = torch.zeros((n, 1, t_max, p_max + t_max), dtype=torch.bool)
    q = torch.arange(t_max)
    own = q[None, :] <= q[:, None]  # (T_max, T_max) causal
    src, dst = [], []
    for k, (r, start, t) in enumerate(spans):
        flat = r * length + start + torch.arange(t)
        response_index[k, :t] = flat
        response_index[k, t:] = flat[0]
        response_mask[k, 0, :, : prompt_lens[r]] = True
        response_mask[k, 0, :t, p_max : p_max + t] = own[:t, :t]
        src.append(k * t_max + torch.arange(t))
        dst.append(flat)
    empty = torch.zeros(0, dtype=torch.long)
    return PackLayout(
        prompt_len=p_max,
        prompt_mask=prompt_mask,
        prompt_src=prompt_src,
        prompt_dst=prompt_dst,
        response_pack=response_pack,
        response_index=response_index,
        response_mask=response_mask,
        response_src=torch.cat(src) if src else empty,
        response_dst=torch.cat(dst) if dst else empty,
    )


def packed_attention(
    query: Tensor, key: Tensor, value: Tensor, layout: PackLayout, scaling: float | None = None
) -> Tensor:
    """query (R, H, L, D), key/value (R, Hkv, L, D) of packs -> (R, L, H, D) attention output,
    equal to SDPA with the packs' 4D mask at the real positions; padding positions give 0.
    ``layout``'s tensors must be on the query's device (``PackLayout.to``)."""
    # Imported here: transformers costs seconds to import, and learner.batching imports this
    # module in processes that never train.
    from transformers.integrations.sdpa_attention import repeat_kv

    r, h, length, d = query.shape
    groups = h // key.shape[1]
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    p = layout.prompt_len
    out = query.new_zeros((r * length, h, d))

    # Prompts: causal over the first P_max positions of each pack.
    mask = layout.prompt_mask
    prompt = F.scaled_dot_product_attention(
        query[:, :, :p], key[:, :, :p], value[:, :, :p],
        attn_mask=mask, is_causal=mask is None, scale=scaling,
    )  # fmt: skip
    prompt = prompt.transpose(1, 2).reshape(r * p, h, d)
    out = out.index_copy(0, layout.prompt_dst, prompt.index_select(0, layout.prompt_src))
    if layout.response_src.numel() == 0:
        return out.view(r, length, h, d)

    # Responses: own queries against the pack's prompt keys, then their own keys.
    index, packs = layout.response_index, layout.response_pack  # (N, T_max), (N,)
    n, t = index.shape

    def rows(x: Tensor) -> Tensor:  # (R, H, L, D) -> (N, H, T_max, D) at the responses' tokens
        flat = x.transpose(1, 2).reshape(r * length, h, d)
        return flat.index_select(0, index.flatten()).view(n, t, h, d).transpose(1, 2)

    # index_select, not x[index]: its backward is an index_add, far cheaper on a CPU than the
    # accumulating index_put of advanced indexing.
    keys = torch.cat([key[:, :, :p].index_select(0, packs), rows(key)], dim=2)
    values = torch.cat([value[:, :, :p].index_select(0, packs), rows(value)], dim=2)
    resp = F.scaled_dot_product_attention(
        rows(query), keys, values, attn_mask=layout.response_mask, scale=scaling
    )  # (N, H, T_max, D)
    resp = resp.transpose(1, 2).reshape(n * t, h, d)
    resp = resp.index_select(0, layout.response_src)
    return out.index_copy(0, layout.response_dst, resp).view(r, length, h, d)


def _attention(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    pack_layout: PackLayout | None = None,
    **kwargs: Any,
) -> tuple[Tensor, None]:
    """transformers' attention signature: packed when the forward passes ``pack_layout``."""
    if pack_layout is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if dropout > 0.0:
        raise ValueError("packed attention has no dropout: set the model's attention_dropout to 0")
    return packed_attention(query, key, value, pack_layout, scaling), None


def register() -> None:
    """Add ``packed_attention`` to transformers' attention registry (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, _attention)


def supports(config: Any) -> bool:
    """Whether a model's attention is plain softmax attention over every earlier position (no
    sliding window, no logit soft-capping), which ``packed_attention`` reproduces."""
    return (
        getattr(config, "_attn_implementation", None) in ("sdpa", "eager")
        and getattr(config, "sliding_window", None) is None
        and getattr(config, "attn_logit_softcapping", None) is None
        and not getattr(config, "attention_dropout", 0.0)
    )
