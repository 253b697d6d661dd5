"""The GeneralPoints evaluation suites as the families build them: distinct, stable, disjoint."""

from __future__ import annotations

import json

from envs.families import config_dict, family
from envs.generalpoints.config import GeneralPointsConfig
from envs.generalpoints.deal import number_key, one_op_targets, split_sets
from verifier.generalpoints_rules import (
    FACE_RANKS,
    RANKS,
    SUITS_BY_COLOR,
    GeneralPointsTask,
    rank_value,
)

GP = family("generalpoints")
DEMO = config_dict(GeneralPointsConfig(num_cards=2, target_mode="one_op"))
DEMO_IMAGE = DEMO | {"observation_mode": "image"}


def tasks(suite: dict, limit: int | None = None, seed: int = 0) -> list[GeneralPointsTask]:
    options = GP.eval_reset_options(suite, limit, seed)
    return [GeneralPointsTask.coerce(o["task_state"]) for o in options]


def prompt_key(task: GeneralPointsTask) -> tuple:
    """What a text-mode prompt shows: the ordered ranks, the rule and the target."""
    return task.ranks, task.face_card_rule, task.target


def test_suites_are_named_and_validation_is_last() -> None:
    assert list(GP.suites(DEMO)) == ["in_distribution", "ood_rule", "validation"]
    assert list(GP.suites(DEMO_IMAGE)) == [
        "in_distribution", "ood_rule", "ood_visual", "validation"
    ]  # fmt: skip


def test_ood_rule_plays_every_face_card_hand_with_every_target() -> None:
    suite = GP.suites(DEMO)["ood_rule"]
    got = tasks(suite)
    assert len(got) == len({prompt_key(t) for t in got}) >= 200  # distinct, and enough
    assert all(t.face_card_rule == "ordinal" for t in got)
    assert all(set(t.ranks) & FACE_RANKS for t in got)
    # Exhaustive: every ordered face-card pair, with each target one_op can set for it.
    expected = {
        ((a, b), "ordinal", target)
        for a in RANKS
        for b in RANKS
        if {a, b} & FACE_RANKS
        for target in one_op_targets((rank_value(a, "ordinal"), rank_value(b, "ordinal")))
    }
    assert {prompt_key(t) for t in got} == expected


def test_suites_are_stable_and_capped_by_a_seeded_sample() -> None:
    suite = GP.suites(DEMO)["ood_rule"]
    assert GP.eval_reset_options(suite, None, 0) == GP.eval_reset_options(suite, None, 0)
    full = [json.dumps(o, sort_keys=True) for o in GP.eval_reset_options(suite, None, 0)]
    capped = [json.dumps(o, sort_keys=True) for o in GP.eval_reset_options(suite, 50, 0)]
    assert len(capped) == 50 and capped == sorted(capped, key=full.index)  # subset, same order
    assert capped == [json.dumps(o, sort_keys=True) for o in GP.eval_reset_options(suite, 50, 0)]
    assert capped != [json.dumps(o, sort_keys=True) for o in GP.eval_reset_options(suite, 50, 1)]


def test_in_distribution_and_validation_are_held_out_and_disjoint() -> None:
    suites = GP.suites(DEMO)
    train, validation, held_out = split_sets(GeneralPointsConfig.from_dict(DEMO))
    in_dist, val = tasks(suites["in_distribution"]), tasks(suites["validation"])
    assert {number_key(t.ranks, "ten") for t in in_dist} == held_out
    assert {number_key(t.ranks, "ten") for t in val} == validation
    assert not (validation | held_out) & train  # never trained on
    assert len(in_dist) == len({prompt_key(t) for t in in_dist})
    assert not {prompt_key(t) for t in in_dist} & {prompt_key(t) for t in val}


def test_image_suites_show_one_seeded_suit_assignment_per_prompt() -> None:
    suites = GP.suites(DEMO_IMAGE)
    in_dist, visual = tasks(suites["in_distribution"]), tasks(suites["ood_visual"])
    # The same prompts up to suit colour: one suit assignment per (ordered ranks, target).
    assert [prompt_key(t) for t in in_dist] == [prompt_key(t) for t in visual]
    assert len({prompt_key(t) for t in visual}) == len(visual)
    assert {c.suit for t in in_dist for c in t.cards} <= set(SUITS_BY_COLOR["black"])
    assert {c.suit for t in visual for c in t.cards} == set(SUITS_BY_COLOR["red"])
    assert tasks(suites["ood_visual"], seed=0) == visual  # deterministic for a seed


def test_text_suits_do_not_make_prompts_distinct() -> None:
    # Text prompts do not show suits: one prompt per (ordered ranks, target), never per suit.
    got = tasks(GP.suites(DEMO)["in_distribution"])
    assert len({c.suit for t in got for c in t.cards}) == 1
