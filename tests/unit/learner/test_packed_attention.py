"""Attention over a packed prefix tree: equal to SDPA with the tree's ancestor mask (the slow
reference) in values and gradients, for shared prompts, nested rows, rows that share nothing,
long prefixes cut into several chunks, and grouped-query attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from learner.packed_attention import packed_attention, supports
from learner.prefix_tree import ancestor_mask, build_tree, tree_layout


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor):
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3).transpose(1, 2)


def _rows(spec: list[tuple[int, int]], seed: int) -> list[list[int]]:
    """Rows as (prefix id, own length): rows with one prefix id share a 20-token prefix."""
    gen = torch.Generator().manual_seed(seed)
    prefixes: dict[int, list[int]] = {}
    rows = []
    for prefix, own in spec:
        shared = prefixes.setdefault(prefix, torch.randint(1, 99, (20,), generator=gen).tolist())
        rows.append(shared + torch.randint(1, 99, (own,), generator=gen).tolist())
    return rows


CASES = {
    "one shared prompt": _rows([(0, 4), (0, 2), (0, 6), (0, 3)], 0),
    "two prompts and a lone row": _rows([(0, 2), (0, 5), (1, 1), (1, 4), (2, 3)], 1),
    "nested rows (turn 1 inside turn 2)": [[1, 2, 3, 4], [1, 2, 3, 4, 5, 6, 7], [1, 2, 8]],
    "nothing shared": [[1, 2, 3], [4, 5], [6, 7, 8, 9]],
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("heads", [(4, 4), (4, 2)])  # plain and grouped-query attention
@pytest.mark.parametrize("chunk", [3, 64])  # long paths cut into many chunks, or few
def test_equals_ancestor_mask_attention_values_and_gradients(
    case: str, heads: tuple[int, int], chunk: int
) -> None:
    tree = build_tree(CASES[case])
    layout, mask = tree_layout(tree, chunk_tokens=chunk), ancestor_mask(tree)[None, None]
    n = len(tree.tokens)
    gen = torch.Generator().manual_seed(len(case))
    shapes = [(1, heads[0], n, 8), (1, heads[1], n, 8), (1, heads[1], n, 8)]
    qkv = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    outs = []
    for fn in (
        lambda q, k, v: packed_attention(q, k, v, layout, 0.3),
        lambda q, k, v: _reference(q, k, v, mask),
    ):
        xs = [x.clone().requires_grad_() for x in qkv]
        out = fn(*xs)
        assert out.shape == (1, n, heads[0], 8)
        weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
        (out * weights).sum().backward()
        outs.append((out.detach(), [x.grad for x in xs]))
    (got, got_grads), (want, want_grads) = outs
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-10)


def test_unsupported_models() -> None:
    class Config:
        _attn_implementation = "sdpa"
        sliding_window = None

    assert supports(Config())
    Config.sliding_window = 16  # a window the packed path would not apply
    assert not supports(Config())
