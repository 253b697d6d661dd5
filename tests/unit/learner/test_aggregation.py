"""Loss aggregation modes: hand-computed values and a slow reference loop."""

import pytest
import torch
from torch.testing import assert_close

from learner.aggregation import LOSS_AGGREGATIONS, register_aggregation


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def test_three_modes_by_hand():
    # Row 0: [1, 2, 3] (3 tokens), row 1: [10, pad, pad] (1 token).
    x = t([[1.0, 2.0, 3.0], [10.0, 99.0, 99.0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    assert_close(LOSS_AGGREGATIONS["token-mean"](x, mask), t(16.0 / 4))  # (1+2+3+10) / 4
    assert_close(LOSS_AGGREGATIONS["seq-mean-token-mean"](x, mask), t((2.0 + 10.0) / 2))
    assert_close(LOSS_AGGREGATIONS["seq-mean-token-sum"](x, mask), t((6.0 + 10.0) / 2))


def reference(x, mask, mode):
    rows = []
    tokens = []
    for b in range(x.shape[0]):
        vals = [float(x[b, j]) for j in range(x.shape[1]) if mask[b, j]]
        tokens += vals
        if mode == "seq-mean-token-mean":
            rows.append(sum(vals) / max(1, len(vals)))
        else:
            rows.append(sum(vals))
    if mode == "token-mean":
        return sum(tokens) / max(1, len(tokens))
    return sum(rows) / len(rows)


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
@pytest.mark.parametrize("seed", range(3))
def test_modes_match_reference_loop_and_mask_gradients(mode, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 7, generator=gen, dtype=torch.float64).requires_grad_()
    mask = torch.rand(5, 7, generator=gen) < 0.6
    mask[:, 0] = True
    mask[4] = False  # an all-padding row counts as a zero sequence in the sequence means
    out = LOSS_AGGREGATIONS[mode](x, mask)
    assert_close(out, t(reference(x.detach(), mask, mode)))
    out.backward()
    assert (x.grad[~mask] == 0).all()


def test_registry_guard_and_shape_check():
    assert set(LOSS_AGGREGATIONS) == {"token-mean", "seq-mean-token-mean", "seq-mean-token-sum"}
    with pytest.raises(ValueError, match="twice"):
        register_aggregation("token-mean")(LOSS_AGGREGATIONS["token-mean"])
    with pytest.raises(ValueError, match="needs"):
        LOSS_AGGREGATIONS["seq-mean-token-sum"](torch.zeros(3), torch.ones(3, dtype=torch.bool))
