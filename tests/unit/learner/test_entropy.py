"""Entropy of the policy: by hand, the chunked autograd function against plain tensor ops
(values and gradients, temperature, bf16 logits, chunk boundaries, ignored positions)."""

import math

import pytest
import torch
from torch.testing import assert_close

from learner.entropy import entropy_from_logits, gather_token_entropy, token_entropy
from learner.token_logprobs import CHUNK_ROWS

LN = math.log


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def test_entropy_by_hand_and_masked():
    # Row 0: p = [0.5, 0.25, 0.25]: H = 0.5 ln 2 + 2 * 0.25 ln 4 = 1.5 ln 2.
    # Row 1: uniform over 3: H = ln 3, but masked out.
    logits = t([[[LN(0.5), LN(0.25), LN(0.25)], [0.0, 0.0, 0.0]]]).float()
    mask = torch.tensor([[True, False]])
    assert_close(entropy_from_logits(logits, mask), torch.tensor(1.5 * LN(2)))
    both = entropy_from_logits(logits, torch.ones(1, 2, dtype=torch.bool))
    assert_close(both, torch.tensor((1.5 * LN(2) + LN(3)) / 2))
    chunked = gather_token_entropy(logits, 2)
    assert_close(chunked, torch.tensor([[1.5 * LN(2), LN(3)]]))


def test_entropy_matches_reference_and_gradient_respects_mask():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 6, generator=gen, dtype=torch.float64).requires_grad_()
    mask = torch.rand(3, 4, generator=gen) < 0.5
    mask[0, 0] = True
    h = entropy_from_logits(logits, mask)
    per_token = []
    for b in range(3):
        for j in range(4):
            if mask[b, j]:
                p = torch.softmax(logits[b, j].detach(), -1).tolist()
                per_token.append(-sum(pi * math.log(pi) for pi in p))
    assert_close(h, torch.tensor(sum(per_token) / len(per_token), dtype=torch.float32))
    h.backward()
    assert (logits.grad[~mask] == 0).all() and (logits.grad[mask] != 0).any()


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("positions", [5, CHUNK_ROWS + 3])
def test_chunked_entropy_equals_tensor_ops_values_and_gradients(temperature, positions):
    gen = torch.Generator().manual_seed(positions)
    logits = (3 * torch.randn(2, positions + 1, 11, generator=gen)).requires_grad_()
    weights = torch.randn(2, positions, generator=gen)
    got = gather_token_entropy(logits, positions, temperature)
    (got * weights).sum().backward()
    grad = logits.grad.clone()
    logits.grad = None
    want = token_entropy(logits[:, :positions] / temperature)
    (want * weights).sum().backward()
    assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert_close(grad, logits.grad, rtol=1e-4, atol=2e-5)  # float32 sums in both
    assert (grad[:, positions:] == 0).all()  # the position past the response is ignored


def test_chunked_entropy_upcasts_bf16_logits():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 4, 9, generator=gen).to(torch.bfloat16)
    got = gather_token_entropy(logits, 3)
    assert got.dtype == torch.float32
    assert_close(got, token_entropy(logits[:, :3].float()))


def test_chunked_entropy_rejects_bad_inputs():
    with pytest.raises(ValueError, match="temperature"):
        gather_token_entropy(torch.zeros(1, 2, 3), 1, 0.0)
    with pytest.raises(ValueError, match="logits"):
        gather_token_entropy(torch.zeros(1, 2, 3), 3)
