"""Held-out split, hand distribution and evaluation task lists."""

from dataclasses import replace

import numpy as np
import pytest

from envs.generalpoints.config import GeneralPointsConfig
from envs.generalpoints.deal import (
    _split_keys,
    deal_task,
    distinct_tasks,
    eligible_hands,
    eval_tasks,
    number_key,
    one_op_target,
    one_op_targets,
    split_keys,
    split_sets,
)
from envs.generalpoints.solver import is_solvable, solve
from verifier.generalpoints_rules import BLACK_SUITS, RED_SUITS


def test_split_is_disjoint_complete_and_sized():
    cfg = GeneralPointsConfig()
    train, validation, held_out = split_sets(cfg)
    assert not train & held_out and not train & validation and not validation & held_out
    assert len(train) + len(validation) + len(held_out) == 566
    assert len(held_out) == round(0.2 * 566)
    assert len(validation) == round(0.15 * 566)
    assert split_keys(cfg) == (train, held_out)


def test_distinct_tasks_play_every_prompt_once():
    cfg = GeneralPointsConfig(num_cards=2, target_mode="one_op")
    ood = distinct_tasks(replace(cfg, split="all", face_card_rule="ordinal"))
    keys = [(t.ranks, t.target) for t in ood]
    assert len(keys) == len(set(keys)) == 218  # every face-card hand, each order and target
    assert all({"J", "Q", "K"} & set(t.ranks) for t in ood)
    # K, 3 under the ordinal rule: 13 + 3, 13 * 3 and 13 - 3 (no exact division)
    assert sorted(t.target for t in ood if t.ranks == ("K", "3")) == [10, 16, 39]
    ids = distinct_tasks(replace(cfg, split="eval"))
    assert all(number_key(t.ranks, "ten") in split_keys(cfg)[1] for t in ids)
    val = distinct_tasks(replace(cfg, split="validation"))
    assert not {(t.ranks, t.target) for t in val} & {(t.ranks, t.target) for t in ids}
    capped = distinct_tasks(replace(cfg, split="eval"), limit=30, seed=1)
    assert len(capped) == 30 and capped == distinct_tasks(replace(cfg, split="eval"), 30, seed=1)
    assert set(map(str, capped)) <= set(map(str, ids))


def test_one_op_targets_are_exactly_what_the_dealer_can_set():
    rng = np.random.default_rng(0)
    for numbers in ((10, 3), (6, 2, 3), (12, 4)):
        drawn = {one_op_target(list(numbers), rng) for _ in range(3000)}
        assert drawn == one_op_targets(numbers)


def test_validation_is_carved_from_train_and_leaves_eval_unchanged():
    cfg = GeneralPointsConfig()
    train, validation, held_out = split_sets(cfg)
    old_train, old_validation, old_held_out = split_sets(replace(cfg, validation_fraction=0.0))
    assert not old_validation
    assert old_held_out == held_out  # the eval suite is the same with or without validation
    assert old_train == train | validation


def test_split_is_deterministic_and_depends_on_seed():
    cfg = GeneralPointsConfig()
    _split_keys.cache_clear()
    first = split_keys(cfg)
    _split_keys.cache_clear()
    assert split_keys(cfg) == first  # recomputed from scratch, same answer
    assert split_keys(replace(cfg, split_seed=1))[1] != first[1]


def test_dealt_hands_respect_split_and_are_solvable():
    cfg = GeneralPointsConfig()
    train, validation, held_out = split_sets(cfg)
    rng = np.random.default_rng(0)
    # Training never deals a validation hand: validation is carved from the train side.
    for split, keys in (("train", train), ("validation", validation), ("eval", held_out)):
        c = replace(cfg, split=split)
        for _ in range(200):
            task = deal_task(c, rng)
            assert number_key(task.ranks, "ten") in keys
            assert is_solvable(task.numbers, 24)
            assert all(card.suit in BLACK_SUITS for card in task.cards)


def test_ood_hands_hold_a_face_card_and_red_suits():
    cfg = GeneralPointsConfig(face_card_rule="ordinal", suit_color="red")
    rng = np.random.default_rng(1)
    for _ in range(300):
        task = deal_task(cfg, rng)
        assert task.has_face_card
        assert all(card.suit in RED_SUITS for card in task.cards)
        assert solve(task.numbers, 24) is not None
    # Without the flag, face-free hands appear.
    cfg = replace(cfg, ood_face_cards_only=False)
    assert any(not deal_task(cfg, rng).has_face_card for _ in range(300))


def test_deal_is_reproducible():
    cfg = GeneralPointsConfig(suit_color="mixed")
    a = [deal_task(cfg, np.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    assert eval_tasks(cfg, 50, seed=3) == eval_tasks(cfg, 50, seed=3)
    assert eval_tasks(cfg, 50, seed=3) != eval_tasks(cfg, 50, seed=4)


def test_eval_tasks_come_from_held_out_split():
    cfg = GeneralPointsConfig(face_card_rule="ordinal")
    _, held_out = split_keys(cfg)
    tasks = eval_tasks(cfg, 234, seed=0)
    assert len(tasks) == 234
    assert all(number_key(t.ranks, "ordinal") in held_out for t in tasks)


def test_hand_distribution_weights_ranks_iid():
    # Under the 10-rule the 10-valued ranks (10, J, Q, K) are 4 of 13: a hand holds about
    # 4 * 4/13 ~ 1.2 of them before conditioning on solvability; check it is not uniform
    # over number multisets (which would give far fewer).
    cfg = GeneralPointsConfig(heldout_fraction=0.0)
    hands, probs = eligible_hands(cfg)
    assert probs.sum() == pytest.approx(1.0)
    tens = sum(
        p * sum(r in ("10", "J", "Q", "K") for r in h) for h, p in zip(hands, probs, strict=True)
    )
    assert 0.9 < tens < 1.6


def test_one_op_targets_are_reachable_small_demo():
    cfg = GeneralPointsConfig(num_cards=2, target_mode="one_op")
    rng = np.random.default_rng(0)
    targets = set()
    for _ in range(200):
        task = deal_task(cfg, rng)
        assert len(task.cards) == 2
        assert task.target >= 0
        assert solve(task.numbers, task.target) is not None
        targets.add(task.target)
    assert len(targets) > 10


def test_unsolvable_variant_fails_loudly():
    with pytest.raises(ValueError, match=r"^split: no dealable hands"):
        eligible_hands(GeneralPointsConfig(num_cards=2, target=1000))
