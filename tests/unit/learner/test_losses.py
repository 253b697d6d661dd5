"""Policy/value losses: hand-computed values, slow reference loops, gradients, clipping."""

import math

import pytest
import torch
from torch.testing import assert_close

from learner.kl import kl_penalty
from learner.losses import (
    POLICY_LOSSES,
    PolicyLossInput,
    PolicyLossParams,
    apply_importance_weights,
    importance_weights,
    ppo_clip_loss,
    register_policy_loss,
    sequence_logprob,
    value_loss,
)

LN = math.log


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


# ----------------------------------------------------------------------------- references


def ppo_item_reference(lp_new, lp_old, adv, eps):
    r = math.exp(lp_new - lp_old)
    return -min(r * adv, max(min(r, 1 + eps), 1 - eps) * adv)


def token_ppo_reference(new, old, adv, weights, mask, eps, per_sequence):
    """Weighted token PPO; per_sequence = mean within each row, then over rows (GRPO)."""
    rows, total, count = [], 0.0, 0
    for b in range(new.shape[0]):
        row_total, row_count = 0.0, 0
        for j in range(new.shape[1]):
            if mask[b, j]:
                item = ppo_item_reference(float(new[b, j]), float(old[b, j]), float(adv[b]), eps)
                row_total += float(weights[b, j]) * item
                row_count += 1
        rows.append(row_total / max(row_count, 1))
        total, count = total + row_total, count + row_count
    return sum(rows) / len(rows) if per_sequence else total / count


def random_batch(seed, b=5, n=7, stale=False, ref=False):
    gen = torch.Generator().manual_seed(seed)
    old = -torch.rand(b, n, generator=gen, dtype=torch.float64) * 3
    new = (old + 0.3 * torch.randn(b, n, generator=gen, dtype=torch.float64)).requires_grad_()
    lengths = torch.randint(1, n + 1, (b,), generator=gen)
    valid = torch.arange(n)[None, :] < lengths[:, None]  # (B, T) right padding
    cut = torch.randint(0, n, (b,), generator=gen)
    reasoning = valid & (torch.arange(n)[None, :] < cut[:, None])
    return PolicyLossInput(
        logp=new,
        old_logp=old,
        advantages=torch.randn(b, generator=gen, dtype=torch.float64),
        answer_mask=valid & ~reasoning,
        reasoning_mask=reasoning,
        behaviour_logp=old + 0.5 * torch.randn(b, n, generator=gen, dtype=torch.float64)
        if stale
        else None,
        ref_logp=old - torch.rand(b, n, generator=gen, dtype=torch.float64) if ref else None,
    )


# ----------------------------------------------------------------------------- log-probs


def test_sequence_logprob_by_hand():
    lp = t([[-1.0, -2.0, -3.0, -4.0], [-0.5, -0.5, -9.0, -9.0]])
    answer = torch.tensor([[False, False, True, True], [False, True, False, False]])
    reasoning = torch.tensor([[True, True, False, False], [True, False, False, False]])
    # Row 0: answer -3 - 4 = -7, reasoning 0.5 * (-1 - 2) = -1.5 -> -8.5
    # Row 1: answer -0.5, reasoning 0.5 * -0.5 = -0.25, padding ignored -> -0.75
    assert_close(sequence_logprob(lp, answer, reasoning, 0.5), t([-8.5, -0.75]))
    with pytest.raises(ValueError, match="overlap"):
        sequence_logprob(lp, answer, answer | reasoning, 0.5)


# ----------------------------------------------------------------------------- PPO surrogate


def test_ppo_sequence_level_by_hand_with_clipping_gradients():
    # ratios [1.5, 0.5, 1.5, 0.5], advantages [1, 1, -1, -1], eps 0.2:
    # 0: min(1.5, 1.2) = 1.2   -> -1.2  (clipped: ratio too high for a good action)
    # 1: min(0.5, 0.8) = 0.5   -> -0.5
    # 2: min(-1.5, -1.2) = -1.5 -> 1.5
    # 3: min(-0.5, -0.8) = -0.8 -> 0.8  (clipped: ratio too low for a bad action)
    # loss = (-1.2 - 0.5 + 1.5 + 0.8) / 4 = 0.15
    old = t([-1.0, -2.0, -3.0, -4.0])
    new = (old + t([LN(1.5), LN(0.5), LN(1.5), LN(0.5)])).requires_grad_()
    loss, metrics = ppo_clip_loss(new, old, t([1.0, 1.0, -1.0, -1.0]), 0.2)
    assert_close(loss, t(0.15))
    assert_close(metrics["clip_frac"], t(0.5))
    assert_close(metrics["ratio_mean"], t(1.0))
    # approx_kl = mean(r - 1 - ln r) = (2 (0.5 - ln 1.5) + 2 (-0.5 - ln 0.5)) / 4
    assert_close(metrics["approx_kl"], t((0.5 - LN(1.5) - 0.5 - LN(0.5)) / 2))
    loss.backward()
    # d/d logp of -A r / 4 is -A r / 4 on unclipped items; clipped items get exactly zero.
    assert_close(new.grad, t([0.0, -0.125, 0.375, 0.0]))


@pytest.mark.parametrize("seed", range(4))
def test_ppo_sequence_level_matches_reference_loop(seed):
    gen = torch.Generator().manual_seed(seed)
    old = torch.randn(20, generator=gen, dtype=torch.float64)
    new = old + 0.3 * torch.randn(20, generator=gen, dtype=torch.float64)
    adv = torch.randn(20, generator=gen, dtype=torch.float64)
    loss, _ = ppo_clip_loss(new, old, adv, 0.1)
    ref = [
        ppo_item_reference(a, b, c, 0.1)
        for a, b, c in zip(new.tolist(), old.tolist(), adv.tolist())
    ]
    assert_close(loss, t(sum(ref) / len(ref)))


@pytest.mark.parametrize("reduction", ["token-mean", "seq-mean-token-mean"])
@pytest.mark.parametrize("seed", range(3))
def test_ppo_token_level_matches_reference_and_masks_gradients(reduction, seed):
    batch = random_batch(seed)
    mask = batch.answer_mask | batch.reasoning_mask
    loss, _ = ppo_clip_loss(
        batch.logp,
        batch.old_logp,
        batch.advantages,
        0.2,
        mask=mask,
        level="token",
        reduction=reduction,
    )
    ref = token_ppo_reference(
        batch.logp.detach(),
        batch.old_logp,
        batch.advantages,
        torch.ones_like(batch.old_logp),
        mask,
        0.2,
        per_sequence=reduction == "seq-mean-token-mean",
    )
    assert_close(loss, t(ref))
    loss.backward()
    assert (batch.logp.grad[~mask] == 0).all()
    assert (batch.logp.grad[mask] != 0).any()


def test_ppo_token_level_clipped_tokens_get_zero_gradient():
    old = torch.zeros(1, 4, dtype=torch.float64)
    new = t([[LN(1.3), LN(1.3), LN(0.7), LN(1.05)]]).requires_grad_()
    adv = t([2.0])  # positive: only ratios above 1 + eps are clipped
    loss, metrics = ppo_clip_loss(
        new, old, adv, 0.2, mask=torch.ones(1, 4, dtype=torch.bool), level="token"
    )
    loss.backward()
    # Tokens 0, 1 (r = 1.3 > 1.2) clipped; token 2 (r = 0.7 < 0.8) is not clipped for A > 0;
    # gradient of -A r / 4 is -2 r / 4: token 2 -> -0.35, token 3 -> -0.525.
    assert_close(new.grad, t([[0.0, 0.0, -0.35, -0.525]]))
    assert_close(metrics["clip_frac"], t(0.5))


def test_ppo_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="sequence"):
        ppo_clip_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), 0.1)
    with pytest.raises(ValueError, match="token"):
        ppo_clip_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), 0.1, level="token")


def test_huge_sequence_log_ratio_stays_finite():
    new = t([300.0, -300.0]).requires_grad_()
    loss, _ = ppo_clip_loss(new, t([0.0, 0.0]), t([-1.0, 1.0]), 0.1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(new.grad).all()


# ----------------------------------------------------------------------------- importance weights


def test_importance_weights_by_hand_and_applied():
    # old - behaviour = [0, ln 1.5, ln 3]: raw [1, 1.5, 3], truncated at 2 -> [1, 1.5, 2]
    behaviour = t([-1.0, -2.0, -3.0])
    old = behaviour + t([0.0, LN(1.5), LN(3.0)])
    w, metrics = importance_weights(old, behaviour, clip=2.0)
    assert_close(w, t([1.0, 1.5, 2.0]))
    assert_close(metrics["is_weight_mean"], t(5.5 / 3))
    assert_close(metrics["is_clip_frac"], t(1 / 3))
    # The surrogate of each item is scaled by its weight: at new == old (r = 1) the loss is
    # -mean(w * A) = -(1 * 1 + 1.5 * 2 + 2 * -1) / 3 = -2 / 3.
    new = old.clone().requires_grad_()
    loss, _ = ppo_clip_loss(new, old, t([1.0, 2.0, -1.0]), 0.2, weights=w)
    assert_close(loss, t(-2.0 / 3))
    loss.backward()
    assert_close(new.grad, t([-1.0, -3.0, 2.0]) / 3)  # d/d logp (-w A r / 3) at r = 1


def test_importance_weights_per_token_masked_and_detached():
    old = t([[0.0, -1.0]]).requires_grad_()
    w, _ = importance_weights(old, t([[-1.0, 5.0]]), clip=10.0, mask=torch.tensor([[True, False]]))
    assert_close(w, t([[math.e, 1.0]]))  # masked token: weight 1
    assert not w.requires_grad
    item = t([[1.0, 1.0]])
    assert_close(apply_importance_weights(item, t([2.0])), t([[2.0, 2.0]]))  # (B,) broadcast
    assert apply_importance_weights(item, None) is item
    with pytest.raises(ValueError, match="do not fit"):
        apply_importance_weights(item, t([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="do not fit"):
        apply_importance_weights(t([1.0, 1.0]), t([[1.0], [2.0]]))


# ----------------------------------------------------------------------------- value loss


def test_value_loss_by_hand_with_clipping_gradient():
    # eps 0.2. Item 0: unclipped (1 - 3)^2 = 4; clipped V = 0.5 + 0.2 = 0.7, (0.7 - 3)^2 = 5.29
    # -> 5.29 (clipped branch wins). Item 1: V = V_old = 2: both (2 - 1)^2 = 1.
    # loss = 0.5 * (5.29 + 1) / 2 = 1.5725
    values = t([1.0, 2.0]).requires_grad_()
    loss, metrics = value_loss(values, t([0.5, 2.0]), t([3.0, 1.0]), 0.2)
    assert_close(loss, t(1.5725))
    assert_close(metrics["vf_clip_frac"], t(0.5))
    loss.backward()
    # Item 0 is on the saturated clip: zero gradient. Item 1: 0.5 * 2 (2 - 1) / 2 = 0.5.
    assert_close(values.grad, t([0.0, 0.5]))


def test_value_loss_matches_reference_loop_with_mask():
    gen = torch.Generator().manual_seed(3)
    v, old, ret = (torch.randn(30, generator=gen, dtype=torch.float64) for _ in range(3))
    mask = torch.rand(30, generator=gen) < 0.7
    loss, _ = value_loss(v, old, ret, 0.3, mask=mask)
    ref = []
    for vi, oi, ri, mi in zip(v.tolist(), old.tolist(), ret.tolist(), mask.tolist()):
        if mi:
            vc = oi + max(-0.3, min(0.3, vi - oi))
            ref.append(max((vi - ri) ** 2, (vc - ri) ** 2))
    assert_close(loss, t(0.5 * sum(ref) / len(ref)))


def test_explained_variance_is_one_for_a_perfect_critic():
    ret = t([1.0, 2.0, 4.0])
    _, metrics = value_loss(ret, ret, ret, 0.2)
    assert_close(metrics["explained_var"], t(1.0))


# ----------------------------------------------------------------------------- registry


def test_registry_names_and_duplicate_guard():
    assert set(POLICY_LOSSES) >= {"ppo_turn", "ppo_token", "grpo"}
    with pytest.raises(ValueError, match="twice"):
        register_policy_loss("grpo")(POLICY_LOSSES["grpo"])


@pytest.mark.parametrize("seed", range(3))
def test_ppo_turn_is_sequence_ppo_on_thought_weighted_logprobs(seed):
    batch = random_batch(seed)
    params = PolicyLossParams(clip_eps=0.1, thought_coef=0.5)
    loss, metrics = POLICY_LOSSES["ppo_turn"](batch, params)
    ref = []
    for b in range(batch.logp.shape[0]):
        seq = {}
        for name, lp in (("new", batch.logp.detach()), ("old", batch.old_logp)):
            seq[name] = sum(
                float(lp[b, j]) * (1.0 if batch.answer_mask[b, j] else 0.5)
                for j in range(lp.shape[1])
                if batch.answer_mask[b, j] or batch.reasoning_mask[b, j]
            )
        ref.append(ppo_item_reference(seq["new"], seq["old"], float(batch.advantages[b]), 0.1))
    assert_close(loss, t(sum(ref) / len(ref)))
    assert set(metrics) == {"clip_frac", "approx_kl", "ratio_mean"}
    loss.backward()
    grad = batch.logp.grad
    # Padding gets nothing; a reasoning token gets thought_coef times its row's answer gradient.
    assert (grad[~(batch.answer_mask | batch.reasoning_mask)] == 0).all()
    for b in range(grad.shape[0]):
        a, r = grad[b][batch.answer_mask[b]], grad[b][batch.reasoning_mask[b]]
        if len(a) and len(r):
            assert_close(r, torch.full_like(r, 0.5 * float(a[0])))


@pytest.mark.parametrize(("name", "per_sequence"), [("ppo_token", False), ("grpo", True)])
@pytest.mark.parametrize("seed", range(3))
def test_token_losses_match_reference_loop(name, per_sequence, seed):
    batch = random_batch(seed)
    params = PolicyLossParams(clip_eps=0.2, thought_coef=0.5)
    loss, _ = POLICY_LOSSES[name](batch, params)
    mask = batch.answer_mask | batch.reasoning_mask
    weights = batch.answer_mask.double() + 0.5 * batch.reasoning_mask.double()
    ref = token_ppo_reference(
        batch.logp.detach(), batch.old_logp, batch.advantages, weights, mask, 0.2, per_sequence
    )
    assert_close(loss, t(ref))


@pytest.mark.parametrize("name", ["ppo_turn", "ppo_token", "grpo", "dr_grpo"])
def test_stale_data_multiplies_in_truncated_importance_weights(name):
    batch = random_batch(7, stale=True)
    params = PolicyLossParams(clip_eps=0.2, is_clip=2.0)
    loss, metrics = POLICY_LOSSES[name](batch, params)
    assert {"is_weight_mean", "is_clip_frac"} <= set(metrics)
    fresh = PolicyLossInput(**{**batch.__dict__, "behaviour_logp": None})
    fresh_loss, fresh_metrics = POLICY_LOSSES[name](fresh, params)
    assert "is_weight_mean" not in fresh_metrics
    assert not torch.isclose(loss, fresh_loss)
    # is_clip=None switches the correction off even with behaviour log-probs present.
    off, _ = POLICY_LOSSES[name](batch, PolicyLossParams(clip_eps=0.2, is_clip=None))
    assert_close(off, fresh_loss)
    if name == "ppo_token":  # per token: loss = token-mean of w * weight * surrogate
        mask = batch.answer_mask | batch.reasoning_mask
        w = (batch.old_logp - batch.behaviour_logp).exp().clamp(max=2.0)
        weights = (batch.answer_mask.double() + 0.5 * batch.reasoning_mask.double()) * w
        ref = token_ppo_reference(
            batch.logp.detach(),
            batch.old_logp,
            batch.advantages,
            weights,
            mask,
            0.2,
            per_sequence=False,
        )
        assert_close(loss, t(ref))


@pytest.mark.parametrize(
    ("name", "agg"),
    [
        ("ppo_turn", "token-mean"),
        ("ppo_token", "token-mean"),
        ("grpo", "seq-mean-token-mean"),
        ("dr_grpo", "seq-mean-token-sum"),
    ],
)
def test_kl_term_is_added_and_requires_reference(name, agg):
    # The KL is aggregated over the response tokens like the policy term of that loss.
    batch = random_batch(2, ref=True)
    base, _ = POLICY_LOSSES[name](batch, PolicyLossParams())
    with_kl, metrics = POLICY_LOSSES[name](batch, PolicyLossParams(kl_coef=0.1))
    mask = batch.answer_mask | batch.reasoning_mask
    assert_close(with_kl, base + 0.1 * kl_penalty(batch.logp, batch.ref_logp, mask, "k3", agg))
    assert_close(metrics["kl_ref"], kl_penalty(batch.logp, batch.ref_logp, mask, "k3"))
    no_ref = PolicyLossInput(**{**batch.__dict__, "ref_logp": None})
    with pytest.raises(ValueError, match="ref_logp"):
        POLICY_LOSSES[name](no_ref, PolicyLossParams(kl_coef=0.1))


def test_token_losses_reject_overlapping_masks():
    batch = random_batch(0)
    bad = PolicyLossInput(**{**batch.__dict__, "answer_mask": batch.answer_mask | True})
    for name in ("ppo_turn", "ppo_token", "grpo", "dr_grpo"):
        with pytest.raises(ValueError, match="overlap"):
            POLICY_LOSSES[name](bad, PolicyLossParams())
