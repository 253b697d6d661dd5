"""KL to the reference model: estimators by hand, slow reference loops, the loss-side and the
reward-side forms."""

import math

import pytest
import torch
from torch.testing import assert_close

from learner.kl import (
    KL_ESTIMATORS,
    kl_penalty,
    mean_token_kl,
    register_kl_estimator,
    sequence_kl,
)
from learner.reference import row_reward_kl


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def test_kl_estimators_by_hand():
    # x = logp - ref = -1 - (-2) = 1: k1 = 1, k2 = 0.5, k3 = exp(-1) - (-1) - 1 = e^-1
    lp, ref, mask = t([[-1.0, 7.0]]), t([[-2.0, 0.0]]), torch.tensor([[True, False]])
    assert_close(kl_penalty(lp, ref, mask, "k1"), t(1.0))
    assert_close(kl_penalty(lp, ref, mask, "k2"), t(0.5))
    assert_close(kl_penalty(lp, ref, mask, "k3"), t(math.exp(-1)))
    assert set(KL_ESTIMATORS) == {"k1", "k2", "k3"}
    with pytest.raises(ValueError, match="twice"):
        register_kl_estimator("k1")(KL_ESTIMATORS["k1"])


def test_kl_k3_matches_reference_and_is_nonnegative():
    gen = torch.Generator().manual_seed(0)
    lp, ref = (torch.randn(4, 5, generator=gen, dtype=torch.float64) for _ in range(2))
    mask = torch.ones(4, 5, dtype=torch.bool)
    items = [
        math.exp(r - p) - (r - p) - 1 for p, r in zip(lp.flatten().tolist(), ref.flatten().tolist())
    ]
    assert min(items) >= 0
    assert_close(kl_penalty(lp, ref, mask, "k3"), t(sum(items) / len(items)))


def test_kl_penalty_aggregates_like_the_loss():
    # Row 0: x = [1, 1] (k1), row 1: x = [3, pad]. token-mean = 5 / 3; seq-mean-token-mean =
    # (1 + 3) / 2 = 2; seq-mean-token-sum = (2 + 3) / 2 = 2.5.
    lp, ref = t([[1.0, 1.0], [3.0, 9.0]]), torch.zeros(2, 2, dtype=torch.float64)
    mask = torch.tensor([[True, True], [True, False]])
    assert_close(kl_penalty(lp, ref, mask, "k1", "token-mean"), t(5 / 3))
    assert_close(kl_penalty(lp, ref, mask, "k1", "seq-mean-token-mean"), t(2.0))
    assert_close(kl_penalty(lp, ref, mask, "k1", "seq-mean-token-sum"), t(2.5))


def test_kl_gradient_flows_to_the_policy_only():
    lp = t([[-1.0, -2.0]]).requires_grad_()
    ref = t([[-2.0, -2.0]]).requires_grad_()
    kl_penalty(lp, ref, torch.ones(1, 2, dtype=torch.bool), "k3").backward()
    # d/dx (e^-x + x - 1) / 2 = (1 - e^-x) / 2: x = 1 -> (1 - e^-1) / 2, x = 0 -> 0
    assert_close(lp.grad, t([[(1 - math.exp(-1)) / 2, 0.0]]))
    assert ref.grad is None


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_sequence_kl_is_the_masked_sum_per_row(kind):
    gen = torch.Generator().manual_seed(1)
    lp, ref = (torch.randn(3, 6, generator=gen, dtype=torch.float64) for _ in range(2))
    mask = torch.rand(3, 6, generator=gen) < 0.6
    fn = {
        "k1": lambda x: x,
        "k2": lambda x: 0.5 * x * x,
        "k3": lambda x: math.exp(-x) + x - 1,
    }[kind]
    want = [
        sum(fn(lp[b, j].item() - ref[b, j].item()) for j in range(6) if mask[b, j])
        for b in range(3)
    ]
    assert_close(sequence_kl(lp, ref, mask, kind), t(want))
    total = sum(want) / max(1, int(mask.sum()))
    assert_close(mean_token_kl(lp, ref, mask, kind), t(total))


def test_row_reward_kl_by_hand():
    # k1 over the two masked tokens: (-1 - -2) + (-1 - -1.5) = 1.5
    kl, n = row_reward_kl(t([-1.0, -1.0, -5.0]), t([-2.0, -1.5, 0.0]), [True, True, False], "k1")
    assert (round(kl, 9), n) == (1.5, 2)
