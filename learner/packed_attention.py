"""Attention over a packed prefix tree that skips the pairs the tree's mask rules out.

A micro-batch packed as a prefix tree (learner/prefix_tree.py) is one sequence of N tokens in
which a token may attend to its ancestors only. SDPA with that (N, N) mask computes every pair
and discards most of them (rows that share a 200-token prompt and then go their own ways keep
a small share of the square), and on a CPU the masked kernel also runs far below the matrix
multiplies' rate.

``packed_attention`` computes the same result chunk by chunk: ``TreeLayout`` cuts the tree
into chunks of consecutive tokens along one path; each chunk's queries attend to the keys of
their path (root first) under a small causal mask, and chunks with paths of similar length are
batched into one SDPA call (a bucket). Computed pairs: about sum over chunks of C x path
length, which is what each row alone would compute for its own tokens, counted once per
shared token. Every step is torch's scaled_dot_product_attention, index_select and
index_copy, so the gradient is autograd's.

``register`` adds the function to transformers' attention registry under ``ATTENTION_NAME``;
learner/models.py switches a model to it for the packed forward only. Without a layout (an
unpacked forward) the function is transformers' own SDPA attention.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from learner.prefix_tree import TreeLayout

ATTENTION_NAME = "veriray_packed_sdpa"


def packed_attention(
    query: Tensor, key: Tensor, value: Tensor, layout: TreeLayout, scaling: float | None = None
) -> Tensor:
    """query (1, H, N, D), key/value (1, Hkv, N, D) of a packed prefix tree -> (1, N, H, D)
    attention output, equal to SDPA with the tree's ancestor mask. ``layout``'s tensors must be
    on the query's device (``TreeLayout.to``)."""
    # Imported here: transformers costs seconds to import, and learner.batching imports this
    # module in processes that never train.
    from transformers.integrations.sdpa_attention import repeat_kv

    _, h, n, d = query.shape
    groups = h // key.shape[1]
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    # (N, H, D) views: index_select along the tokens. Not x[index]: index_select's backward is
    # an index_add, far cheaper on a CPU than the accumulating index_put of advanced indexing.
    q_flat, k_flat, v_flat = (x[0].transpose(0, 1) for x in (query, key, value))
    out = query.new_zeros((n, h, d))
    for b in layout.buckets:
        m, c = b.query_index.shape
        k = b.key_index.shape[1]

        def rows(x: Tensor, index: Tensor, width: int, m: int = m) -> Tensor:
            """(N, H, D) at the index's positions -> (M, H, width, D)."""
            return x.index_select(0, index.flatten()).view(m, width, h, d).transpose(1, 2)

        chunk = F.scaled_dot_product_attention(
            rows(q_flat, b.query_index, c),
            rows(k_flat, b.key_index, k),
            rows(v_flat, b.key_index, k),
            attn_mask=b.mask,
            scale=scaling,
        )  # (M, H, C, D)
        chunk = chunk.transpose(1, 2).reshape(m * c, h, d).index_select(0, b.src)
        out = out.index_copy(0, b.dst, chunk)
    return out.unsqueeze(0)


def _attention(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    pack_layout: TreeLayout | None = None,
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
