"""The policy-loss knobs: clip-higher, loss aggregation, Dr. GRPO, the entropy bonus and the
entropy metric. Hand-computed values and slow reference loops."""

import math

import pytest
import torch
from torch.testing import assert_close

from learner.losses import POLICY_LOSSES, PolicyLossInput, PolicyLossParams, ppo_clip_loss

LN = math.log


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def item_reference(lp_new, lp_old, adv, low, high):
    r = math.exp(lp_new - lp_old)
    return -min(r * adv, max(min(r, 1 + high), 1 - low) * adv)


def batch_with_entropy(seed, b=4, n=6):
    gen = torch.Generator().manual_seed(seed)
    old = -torch.rand(b, n, generator=gen, dtype=torch.float64) * 3
    new = (old + 0.4 * torch.randn(b, n, generator=gen, dtype=torch.float64)).requires_grad_()
    lengths = torch.randint(1, n + 1, (b,), generator=gen)
    valid = torch.arange(n)[None, :] < lengths[:, None]
    cut = torch.randint(0, n, (b,), generator=gen)
    reasoning = valid & (torch.arange(n)[None, :] < cut[:, None])
    entropy = torch.rand(b, n, generator=gen, dtype=torch.float64).requires_grad_()
    return PolicyLossInput(
        logp=new,
        old_logp=old,
        advantages=torch.randn(b, generator=gen, dtype=torch.float64),
        answer_mask=valid & ~reasoning,
        reasoning_mask=reasoning,
        entropy=entropy,
    )


# ----------------------------------------------------------------------------- clip-higher


def test_clip_higher_by_hand():
    # ratios [1.3, 1.3, 0.7, 0.7], advantages [1, 1, -1, -1]: items 0 and 1 have A > 0,
    # so only the upper clip matters: eps_high 0.28 keeps 1.28, the symmetric 0.2 keeps 1.2.
    # Items 2, 3 (A < 0, r = 0.7): the lower clip 0.2 keeps 0.8 -> loss 0.8 each.
    old = torch.zeros(4, dtype=torch.float64)
    new = t([LN(1.3), LN(1.3), LN(0.7), LN(0.7)])
    adv = t([1.0, 1.0, -1.0, -1.0])
    sym, _ = ppo_clip_loss(new, old, adv, 0.2)
    high, m = ppo_clip_loss(new, old, adv, 0.2, clip_eps_high=0.28)
    assert_close(sym, t((-1.2 - 1.2 + 0.8 + 0.8) / 4))
    assert_close(high, t((-1.28 - 1.28 + 0.8 + 0.8) / 4))
    assert_close(m["clip_frac"], t(1.0))
    # A wider upper clip leaves a ratio of 1.25 unclipped: its gradient -A r / 4 survives.
    new = t([LN(1.25), 0.0, 0.0, 0.0]).requires_grad_()
    loss, _ = ppo_clip_loss(new, old, adv, 0.2, clip_eps_high=0.28)
    loss.backward()
    assert_close(new.grad[0], t(-1.25 / 4))


@pytest.mark.parametrize("seed", range(3))
def test_asymmetric_clip_matches_reference_loop(seed):
    gen = torch.Generator().manual_seed(seed)
    old = torch.randn(30, generator=gen, dtype=torch.float64)
    new = old + 0.4 * torch.randn(30, generator=gen, dtype=torch.float64)
    adv = torch.randn(30, generator=gen, dtype=torch.float64)
    loss, _ = ppo_clip_loss(new, old, adv, 0.1, clip_eps_high=0.3)
    ref = [
        item_reference(a, b, c, 0.1, 0.3)
        for a, b, c in zip(new.tolist(), old.tolist(), adv.tolist())
    ]
    assert_close(loss, t(sum(ref) / len(ref)))


@pytest.mark.parametrize("name", ["ppo_turn", "ppo_token", "grpo", "dr_grpo"])
def test_every_policy_loss_honours_clip_eps_high(name):
    batch = batch_with_entropy(1)
    sym, _ = POLICY_LOSSES[name](batch, PolicyLossParams(clip_eps=0.05))
    same, _ = POLICY_LOSSES[name](batch, PolicyLossParams(clip_eps=0.05, clip_eps_high=0.05))
    wide, _ = POLICY_LOSSES[name](batch, PolicyLossParams(clip_eps=0.05, clip_eps_high=0.5))
    assert_close(sym, same)
    assert not torch.isclose(sym, wide)


# ----------------------------------------------------------------------------- aggregation


def token_reference(batch, low, high, thought_coef, mode):
    rows, tokens = [], []
    for b in range(batch.logp.shape[0]):
        items = []
        for j in range(batch.logp.shape[1]):
            a, r = bool(batch.answer_mask[b, j]), bool(batch.reasoning_mask[b, j])
            if a or r:
                w = 1.0 if a else thought_coef
                lp_new, lp_old = float(batch.logp.detach()[b, j]), float(batch.old_logp[b, j])
                adv = float(batch.advantages[b])
                items.append(w * item_reference(lp_new, lp_old, adv, low, high))
        tokens += items
        rows.append(
            sum(items) / max(1, len(items)) if mode == "seq-mean-token-mean" else sum(items)
        )
    if mode == "token-mean":
        return sum(tokens) / len(tokens)
    return sum(rows) / len(rows)


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("ppo_token", "token-mean"),
        ("grpo", "seq-mean-token-mean"),
        ("dr_grpo", "seq-mean-token-sum"),
    ],
)
@pytest.mark.parametrize("seed", range(2))
def test_token_losses_default_aggregation_matches_reference(name, mode, seed):
    batch = batch_with_entropy(seed)
    loss, _ = POLICY_LOSSES[name](batch, PolicyLossParams(clip_eps=0.2, clip_eps_high=0.28))
    assert_close(loss, t(token_reference(batch, 0.2, 0.28, 0.5, mode)))


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
def test_loss_agg_overrides_every_token_loss(mode):
    batch = batch_with_entropy(5)
    params = PolicyLossParams(clip_eps=0.2, loss_agg=mode)
    want = t(token_reference(batch, 0.2, 0.2, 0.5, mode))
    for name in ("ppo_token", "grpo", "dr_grpo"):
        loss, _ = POLICY_LOSSES[name](batch, params)
        assert_close(loss, want)


def test_dr_grpo_does_not_normalise_by_length_by_hand():
    # One row of 2 tokens, one of 1; at r = 1 each token's loss is -A. Advantages [1, 1]:
    # seq-mean-token-sum = (-2 + -1) / 2 = -1.5 (grpo's seq-mean-token-mean would give -1).
    old = torch.zeros(2, 2, dtype=torch.float64)
    answer = torch.tensor([[True, True], [True, False]])
    batch = PolicyLossInput(
        logp=old.clone(),
        old_logp=old,
        advantages=t([1.0, 1.0]),
        answer_mask=answer,
        reasoning_mask=torch.zeros_like(answer),
    )
    assert_close(POLICY_LOSSES["dr_grpo"](batch, PolicyLossParams())[0], t(-1.5))
    assert_close(POLICY_LOSSES["grpo"](batch, PolicyLossParams())[0], t(-1.0))


# ----------------------------------------------------------------------------- entropy


@pytest.mark.parametrize(
    ("name", "agg"),
    [
        ("ppo_turn", "token-mean"),
        ("ppo_token", "token-mean"),
        ("grpo", "seq-mean-token-mean"),
        ("dr_grpo", "seq-mean-token-sum"),
    ],
)
def test_entropy_bonus_is_subtracted_and_always_logged(name, agg):
    from learner.aggregation import LOSS_AGGREGATIONS, masked_mean

    batch = batch_with_entropy(3)
    mask = batch.answer_mask | batch.reasoning_mask
    base, metrics = POLICY_LOSSES[name](batch, PolicyLossParams())
    assert_close(metrics["entropy"], masked_mean(batch.entropy.detach(), mask))  # coef 0: logged
    bonus, _ = POLICY_LOSSES[name](batch, PolicyLossParams(entropy_coef=0.01))
    assert_close(bonus, base - 0.01 * LOSS_AGGREGATIONS[agg](batch.entropy.detach(), mask))
    bonus.backward()
    # d loss / d H on a response token = -0.01 x its aggregation weight; padding gets nothing.
    assert (batch.entropy.grad[~mask] == 0).all()
    assert (batch.entropy.grad[mask] < 0).all()


def test_entropy_coef_needs_the_entropy_and_none_means_no_metric():
    batch = batch_with_entropy(0)
    bare = PolicyLossInput(**{**batch.__dict__, "entropy": None})
    _, metrics = POLICY_LOSSES["grpo"](bare, PolicyLossParams())
    assert "entropy" not in metrics
    with pytest.raises(ValueError, match="entropy"):
        POLICY_LOSSES["grpo"](bare, PolicyLossParams(entropy_coef=0.01))
