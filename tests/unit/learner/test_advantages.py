"""Advantage estimators: hand-computed values and slow reference loops."""

import math

import pytest
import torch
from torch.testing import assert_close

from learner.advantages import (
    ADVANTAGE_ESTIMATORS,
    AdvantageInput,
    AdvantageParams,
    discounted_returns,
    gae,
    group_baseline_advantages,
    register_advantage,
    whiten,
)


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


# ----------------------------------------------------------------------------- references


def gae_reference(rewards, values, dones, gamma, lam, last_value=0.0):
    """A_t = sum_l (gamma lam)^l delta_{t+l} inside the episode, written out term by term."""
    n = len(rewards)
    deltas = []
    for i in range(n):
        if dones[i]:
            next_v = 0.0
        elif i + 1 < n:
            next_v = values[i + 1]
        else:
            next_v = last_value
        deltas.append(rewards[i] + gamma * next_v - values[i])
    adv = []
    for i in range(n):
        total, j = 0.0, i
        while j < n:
            total += (gamma * lam) ** (j - i) * deltas[j]
            if dones[j]:
                break
            j += 1
        adv.append(total)
    return adv, [a + v for a, v in zip(adv, values)]


def group_reference(rewards, groups, normalize_std, leave_one_out, eps):
    out = []
    for i, g in enumerate(groups):
        members = [rewards[j] for j in range(len(groups)) if groups[j] == g]
        n = len(members)
        if n < 2:
            out.append(0.0)
            continue
        mean = sum(members) / n
        adv = (
            rewards[i] - (sum(members) - rewards[i]) / (n - 1)
            if leave_one_out
            else (rewards[i] - mean)
        )
        if normalize_std:
            std = math.sqrt(sum((m - mean) ** 2 for m in members) / (n - 1))
            adv /= std + eps
        out.append(adv)
    return out


def random_episodes(gen, n):
    rewards = torch.randn(n, generator=gen, dtype=torch.float64)
    values = torch.randn(n, generator=gen, dtype=torch.float64)
    dones = torch.rand(n, generator=gen) < 0.3
    return rewards, values, dones


# ----------------------------------------------------------------------------- gae


def test_gae_three_turns_by_hand():
    # One episode, gamma 0.9, lambda 0.95 (gamma * lambda = 0.855):
    # delta_2 = 5 - 2.0 = 3.0 (terminal: no bootstrap)
    # delta_1 = -1 + 0.9 * 2.0 - 1.0 = -0.2
    # delta_0 = 1 + 0.9 * 1.0 - 0.5 = 1.4
    # A_2 = 3.0; A_1 = -0.2 + 0.855 * 3.0 = 2.365; A_0 = 1.4 + 0.855 * 2.365 = 3.422075
    adv, ret = gae(t([1.0, -1.0, 5.0]), t([0.5, 1.0, 2.0]), t([0, 0, 1], torch.bool), 0.9, 0.95)
    assert_close(adv, t([3.422075, 2.365, 3.0]))
    assert_close(ret, t([3.922075, 3.365, 5.0]))  # A + V


def test_gae_does_not_bootstrap_across_episodes():
    # Episodes [r=1, V=0.5 done] and [r=2, V=1 ; r=0, V=3 done], gamma 0.9, lambda 0.95:
    # ep 1: A = 1 - 0.5 = 0.5 (V of the next episode's first turn must not leak in)
    # ep 2: delta_2 = 0 - 3 = -3; delta_1 = 2 + 0.9 * 3 - 1 = 3.7; A_1 = 3.7 + 0.855 * -3 = 1.135
    adv, _ = gae(t([1.0, 2.0, 0.0]), t([0.5, 1.0, 3.0]), t([1, 0, 1], torch.bool), 0.9, 0.95)
    assert_close(adv, t([0.5, 1.135, -3.0]))


def test_gae_bootstraps_an_unfinished_last_turn_only():
    # r = [1, 1], V = [0, 0], last_value 2: delta_1 = 1 + 0.9 * 2 = 2.8, delta_0 = 1
    # A_0 = 1 + 0.855 * 2.8 = 3.394
    adv, _ = gae(t([1.0, 1.0]), t([0.0, 0.0]), t([0, 0], torch.bool), 0.9, 0.95, last_value=2.0)
    assert_close(adv, t([3.394, 2.8]))
    # A truncated-by-budget last turn is marked done: last_value is ignored.
    adv, _ = gae(t([1.0, 1.0]), t([0.0, 0.0]), t([0, 1], torch.bool), 0.9, 0.95, last_value=2.0)
    assert_close(adv, t([1.855, 1.0]))


@pytest.mark.parametrize("seed", range(5))
def test_gae_matches_reference_loop(seed):
    gen = torch.Generator().manual_seed(seed)
    rewards, values, dones = random_episodes(gen, 40)
    gamma, lam, last = 0.7 + 0.05 * seed, 0.9, float(seed)
    adv, ret = gae(rewards.float(), values.float(), dones, gamma, lam, last_value=last)
    ref_adv, ref_ret = gae_reference(
        rewards.tolist(), values.tolist(), dones.tolist(), gamma, lam, last
    )
    assert adv.dtype == torch.float32
    assert_close(adv, torch.tensor(ref_adv, dtype=torch.float32))
    assert_close(ret, torch.tensor(ref_ret, dtype=torch.float32))


def test_gae_rejects_mismatched_shapes_and_carries_no_grad():
    with pytest.raises(ValueError, match="values"):
        gae(t([1.0, 2.0]), t([1.0]), t([1, 1], torch.bool), 0.9, 0.95)
    values = t([0.5, 1.0]).requires_grad_()
    adv, ret = gae(t([1.0, 2.0]), values, t([0, 1], torch.bool), 0.9, 0.95)
    assert not adv.requires_grad and not ret.requires_grad


def test_discounted_returns_by_hand():
    # Episodes [1, 2 done] and [3 done], gamma 0.5: G = [1 + 0.5 * 2, 2, 3] = [2, 2, 3]
    assert_close(
        discounted_returns(t([1.0, 2.0, 3.0]), t([0, 1, 1], torch.bool), 0.5), t([2.0, 2.0, 3.0])
    )


# ----------------------------------------------------------------------------- group baselines


def test_group_baseline_by_hand():
    rewards, groups = t([1.0, 3.0, 5.0, 10.0]), torch.tensor([7, 7, 7, 2])
    # Group 7: mean 3, unbiased std sqrt((4 + 0 + 4) / 2) = 2 -> [-1, 0, 1]; group 2 alone -> 0.
    assert_close(group_baseline_advantages(rewards, groups, eps=0.0), t([-1.0, 0.0, 1.0, 0.0]))
    assert_close(
        group_baseline_advantages(rewards, groups, normalize_std=False), t([-2.0, 0.0, 2.0, 0.0])
    )
    # RLOO: 1 - (3 + 5) / 2 = -3; 3 - (1 + 5) / 2 = 0; 5 - (1 + 3) / 2 = 3.
    loo = group_baseline_advantages(rewards, groups, normalize_std=False, leave_one_out=True)
    assert_close(loo, t([-3.0, 0.0, 3.0, 0.0]))


def test_group_of_equal_rewards_gets_zero_not_nan():
    adv = group_baseline_advantages(t([2.0, 2.0, 2.0]), torch.tensor([0, 0, 0]))
    assert_close(adv, t([0.0, 0.0, 0.0]))


@pytest.mark.parametrize("normalize_std", [True, False])
@pytest.mark.parametrize("leave_one_out", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_group_baseline_matches_reference_loop(normalize_std, leave_one_out, seed):
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randn(50, generator=gen, dtype=torch.float64)
    groups = torch.randint(-3, 9, (50,), generator=gen)  # any ids, some groups of one
    adv = group_baseline_advantages(rewards, groups, normalize_std, leave_one_out, eps=1e-6)
    ref = group_reference(rewards.tolist(), groups.tolist(), normalize_std, leave_one_out, 1e-6)
    assert_close(adv, t(ref))


# ----------------------------------------------------------------------------- whiten


def test_whiten_by_hand_with_mask():
    # [1, 2, 3, 4]: mean 2.5, population variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
    s = math.sqrt(1.25)
    assert_close(whiten(t([1.0, 2.0, 3.0, 4.0])), t([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]))
    # Masked: only [1, 3] count (mean 2, variance 1); the masked entry becomes 0.
    out = whiten(t([1.0, 100.0, 3.0]), mask=torch.tensor([True, False, True]))
    assert_close(out, t([-1.0, 0.0, 1.0]), atol=1e-6, rtol=0)
    assert_close(whiten(t([2.0, 4.0]), shift_mean=False), t([2.0, 4.0]), atol=1e-6, rtol=0)


def test_whiten_matches_reference_on_random_masked_input():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 9, generator=gen, dtype=torch.float64)
    mask = torch.rand(6, 9, generator=gen) < 0.6
    kept = [v for v, m in zip(x.flatten().tolist(), mask.flatten().tolist()) if m]
    mean = sum(kept) / len(kept)
    std = math.sqrt(sum((v - mean) ** 2 for v in kept) / len(kept) + 1e-8)
    expected = torch.where(mask, (x - mean) / std, torch.zeros_like(x))
    assert_close(whiten(x, mask), expected)


# ----------------------------------------------------------------------------- registry


def test_registry_names_and_duplicate_guard():
    assert set(ADVANTAGE_ESTIMATORS) >= {"gae", "grpo", "rloo"}
    with pytest.raises(ValueError, match="twice"):
        register_advantage("gae")(lambda batch, params: (batch.rewards, batch.rewards))


def test_gae_estimator_whitens_advantages_but_not_returns():
    gen = torch.Generator().manual_seed(1)
    rewards, values, dones = random_episodes(gen, 30)
    batch = AdvantageInput(rewards=rewards, dones=dones, values=values)
    adv, ret = ADVANTAGE_ESTIMATORS["gae"](batch, AdvantageParams())
    raw_adv, raw_ret = gae(rewards, values, dones, 0.9, 0.95)
    assert_close(adv, whiten(raw_adv))
    assert_close(ret, raw_ret)
    adv, _ = ADVANTAGE_ESTIMATORS["gae"](batch, AdvantageParams(whiten=False))
    assert_close(adv, raw_adv)


def test_group_estimators_use_reward_to_go_and_name_missing_fields():
    # Single-turn episodes: textbook GRPO / RLOO on the rewards themselves.
    rewards, dones = t([1.0, 3.0, 5.0, 0.0]), torch.ones(4, dtype=torch.bool)
    groups = torch.tensor([0, 0, 0, 1])
    batch = AdvantageInput(rewards=rewards, dones=dones, group_ids=groups)
    adv, ret = ADVANTAGE_ESTIMATORS["grpo"](batch, AdvantageParams())
    assert_close(adv, group_baseline_advantages(rewards, groups))
    assert_close(ret, rewards)
    adv, _ = ADVANTAGE_ESTIMATORS["rloo"](batch, AdvantageParams())
    assert_close(adv, t([-3.0, 0.0, 3.0, 0.0]))
    # Two-turn episode [-1, 5] (gamma 0.9): G = [-1 + 0.9 * 5, 5] = [3.5, 5].
    multi = AdvantageInput(
        rewards=t([-1.0, 5.0]), dones=torch.tensor([False, True]), group_ids=torch.tensor([0, 0])
    )
    _, ret = ADVANTAGE_ESTIMATORS["grpo"](multi, AdvantageParams())
    assert_close(ret, t([3.5, 5.0]))
    with pytest.raises(ValueError, match=r"values.*'gae'"):
        ADVANTAGE_ESTIMATORS["gae"](AdvantageInput(rewards=rewards, dones=dones), AdvantageParams())
    with pytest.raises(ValueError, match="group_ids"):
        ADVANTAGE_ESTIMATORS["grpo"](
            AdvantageInput(rewards=rewards, dones=dones), AdvantageParams()
        )


# ------------------------------------------------------------------------- Dr. GRPO, REINFORCE++


def single_turn(rewards, groups):
    n = len(rewards)
    return AdvantageInput(
        rewards=t(rewards), dones=torch.ones(n, dtype=torch.bool), group_ids=torch.tensor(groups)
    )


def test_dr_grpo_centres_without_std_by_hand():
    # Group 0: [1, 0, 0, 1] mean 0.5 -> [0.5, -0.5, -0.5, 0.5]; group 1: [2, 2] -> [0, 0];
    # a group of one gets 0. GRPO would divide group 0 by its std (0.577...).
    batch = single_turn([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 5.0], [0, 0, 0, 0, 1, 1, 2])
    adv, ret = ADVANTAGE_ESTIMATORS["dr_grpo"](batch, AdvantageParams())
    assert_close(adv, t([0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0]))
    assert_close(ret, batch.rewards)


def test_reinforce_pp_whitens_returns_over_the_whole_batch_by_hand():
    # Returns [1, 0, 0, 1] (one turn each): mean 0.5, population std 0.5 -> [1, -1, -1, 1],
    # whatever the groups say.
    batch = single_turn([1.0, 0.0, 0.0, 1.0], [0, 0, 1, 1])
    adv, ret = ADVANTAGE_ESTIMATORS["reinforce_pp"](batch, AdvantageParams())
    assert_close(adv, t([1.0, -1.0, -1.0, 1.0]), rtol=1e-6, atol=1e-6)
    assert_close(ret, batch.rewards)


def test_reinforce_pp_uses_discounted_reward_to_go():
    # One episode of two turns, rewards [0, 1], gamma 0.5: G = [0.5, 1] -> whitened [-1, 1].
    batch = AdvantageInput(rewards=t([0.0, 1.0]), dones=torch.tensor([False, True]))
    adv, ret = ADVANTAGE_ESTIMATORS["reinforce_pp"](batch, AdvantageParams(gamma=0.5))
    assert_close(ret, t([0.5, 1.0]))
    assert_close(adv, t([-1.0, 1.0]), rtol=1e-6, atol=1e-6)


def test_reinforce_pp_baseline_by_hand():
    # Group 0: [1, 0] -> centred [0.5, -0.5]; group 1: [3, 3] -> [0, 0]. Whitened over the
    # batch: mean 0, population std sqrt(0.125) -> [0.5, -0.5, 0, 0] / 0.35355.
    batch = single_turn([1.0, 0.0, 3.0, 3.0], [0, 0, 1, 1])
    adv, _ = ADVANTAGE_ESTIMATORS["reinforce_pp_baseline"](batch, AdvantageParams())
    s = math.sqrt(0.125)
    assert_close(adv, t([0.5 / s, -0.5 / s, 0.0, 0.0]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_new_estimators_match_reference_loops(seed):
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randn(24, generator=gen, dtype=torch.float64)
    groups = torch.randint(0, 6, (24,), generator=gen)
    batch = single_turn(rewards.tolist(), groups.tolist())
    r, g = rewards.tolist(), groups.tolist()
    centred = group_reference(r, g, normalize_std=False, leave_one_out=False, eps=0.0)
    dr, _ = ADVANTAGE_ESTIMATORS["dr_grpo"](batch, AdvantageParams())
    assert_close(dr, t(centred))

    def whiten_ref(xs):
        mean = sum(xs) / len(xs)
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))
        return [(x - mean) / std for x in xs]

    pp, _ = ADVANTAGE_ESTIMATORS["reinforce_pp"](batch, AdvantageParams())
    assert_close(pp, t(whiten_ref(r)), rtol=1e-6, atol=1e-6)
    ppb, _ = ADVANTAGE_ESTIMATORS["reinforce_pp_baseline"](batch, AdvantageParams())
    assert_close(ppb, t(whiten_ref(centred)), rtol=1e-6, atol=1e-6)
