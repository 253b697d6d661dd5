"""Attention over shared-prompt packs: equal to SDPA with the packs' 4D mask (the slow
reference) in values and gradients, for ragged prompts, responses and padding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from learner.packed_attention import pack_layout, packed_attention, supports
from learner.prompt_packing import pack_rows


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor):
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3).transpose(1, 2)


CASES = {
    "equal prompts": ([[1] * 5] * 3 + [[2] * 5] * 2, [4, 2, 6, 3, 3]),
    "ragged prompts and a lone row": (
        [[1] * 6] * 2 + [[2] * 3] * 3 + [[3] * 4],
        [2, 5, 1, 4, 4, 3],
    ),
    "an empty response": ([[1] * 4] * 3, [3, 0, 2]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("heads", [(4, 4), (4, 2)])  # plain and grouped-query attention
def test_equals_4d_mask_attention_values_and_gradients(case: str, heads: tuple[int, int]) -> None:
    prompts, lengths = CASES[case]
    responses = [[7] * t for t in lengths]
    packed = pack_rows(prompts, responses, pad_id=0)
    r, length = packed.input_ids.shape
    gen = torch.Generator().manual_seed(len(case))
    shapes = [(r, heads[0], length, 8), (r, heads[1], length, 8), (r, heads[1], length, 8)]
    qkv = [torch.randn(s, generator=gen) for s in shapes]
    outs = []
    for fn in (
        lambda q, k, v: packed_attention(q, k, v, packed.layout, 0.3),
        lambda q, k, v: _reference(q, k, v, packed.attention_mask),
    ):
        xs = [x.clone().requires_grad_() for x in qkv]
        out = fn(*xs)
        assert out.shape == (r, length, heads[0], 8)
        real = (packed.input_ids != 0)[:, :, None, None]  # padding positions are not compared
        (out * real).sum().backward()
        outs.append((out.detach() * real, [x.grad for x in xs]))
    (got, got_grads), (want, want_grads) = outs
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_layout_positions() -> None:
    # Packs [p p p | a a | b b b] and [q q | c . . . .] (length 8, see test_prompt_packing).
    layout = pack_layout([3, 2], [[(3, 2), (5, 3)], [(2, 1)]], 8)
    assert layout.prompt_len == 3
    assert layout.prompt_dst.tolist() == [0, 1, 2, 8, 9]
    assert layout.response_index.tolist() == [[3, 4, 3], [5, 6, 7], [10, 10, 10]]
    assert layout.response_src.tolist() == [0, 1, 3, 4, 5, 6]
    assert layout.response_dst.tolist() == [3, 4, 5, 6, 7, 10]
    # Response b sees the 3 prompt keys and its own first two tokens at its second token.
    assert layout.response_mask[1, 0, 1].tolist() == [True] * 3 + [True, True, False]
    # Response c's pack has a 2-token prompt: the third prompt slot is another pack's token.
    assert layout.response_mask[2, 0, 0].tolist() == [True, True, False, True, False, False]


def test_bad_layout_and_unsupported_models() -> None:
    with pytest.raises(ValueError, match="prompt of >= 1 token"):
        pack_layout([0], [[(0, 2)]], 4)

    class Config:
        _attn_implementation = "sdpa"
        sliding_window = None

    assert supports(Config())
    Config.sliding_window = 16  # a window the packed path would not apply
    assert not supports(Config())
