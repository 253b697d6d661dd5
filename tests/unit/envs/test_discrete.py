"""The discrete encodings of GeneralPoints (2 cards) and V-IRL-L: the menu can express the
expert's answer on every held-out prompt of every suite, the family's own verifier scores the
menu's answers, and configs the encodings cannot express are refused naming the field."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from envs.discrete import DiscreteTaskEnv
from envs.families import family
from envs.generalpoints.discrete import formula

GP = {"num_cards": 2, "target_mode": "one_op"}


def suite_configs(name: str, overrides: dict) -> dict[str, dict]:
    fam = family(name)
    return fam.suites(dataclasses.asdict(fam.config_cls(**overrides)))


def play(env: DiscreteTaskEnv, policy) -> tuple[bool, int]:
    obs, _ = env.reset()
    turns, done, info = 0, False, {}
    while not done:
        assert obs.shape == env.observation_space.shape and obs.dtype == np.float32
        assert env.observation_space.contains(obs)
        obs, _, terminated, truncated, info = env.step(policy(env))
        done, turns = terminated or truncated, turns + 1
    return info["success"], turns


@pytest.mark.parametrize(("name", "overrides"), [("generalpoints", GP), ("virl", {})])
def test_expert_menu_item_solves_every_suite_prompt(name: str, overrides: dict) -> None:
    for suite, cfg in suite_configs(name, overrides).items():
        options = family(name).eval_reset_options(cfg, 40, 0)
        env = DiscreteTaskEnv({"family": name, "task": cfg, "reset_options": options})
        outcomes = [play(env, lambda e: e.encoding.expert(e.env))[0] for _ in options]
        assert all(outcomes), f"{name}/{suite}: the expert's menu item failed"


@pytest.mark.parametrize(("name", "overrides"), [("generalpoints", GP), ("virl", {})])
def test_a_wrong_menu_item_fails(name: str, overrides: dict) -> None:
    cfg = suite_configs(name, overrides)["in_distribution"]
    options = family(name).eval_reset_options(cfg, 20, 0)
    env = DiscreteTaskEnv({"family": name, "task": cfg, "reset_options": options})
    n = env.action_space.n

    def wrong(e: DiscreteTaskEnv) -> int:
        expert = e.encoding.expert(e.env)
        # GeneralPoints: another action may reach the target too (3 + 3 = 3 * 2 ...); pick one
        # whose value differs, else any other.
        return (expert + 1) % n

    results = [play(env, wrong)[0] for _ in options]
    assert not all(results)
    if name == "virl":
        assert not any(results)  # one wrong action at every point: no route can succeed


def test_generalpoints_observation_shows_the_rule_and_the_ood_rule_is_unseen() -> None:
    suites = suite_configs("generalpoints", GP)
    env_id = DiscreteTaskEnv({"family": "generalpoints", "task": suites["in_distribution"]})
    env_ood = DiscreteTaskEnv({"family": "generalpoints", "task": suites["ood_rule"]})
    rule_slice = slice(26, 28)
    obs_id, _ = env_id.reset(seed=1)
    obs_ood, _ = env_ood.reset(seed=1)
    assert obs_id[rule_slice].tolist() == [1.0, 0.0]
    assert obs_ood[rule_slice].tolist() == [0.0, 1.0]


def test_generalpoints_formula_order_and_ops() -> None:
    assert formula((3, 7), 0) == "3 + 7" and formula((3, 7), 1) == "7 + 3"
    assert formula((3, 7), 6) == "3 / 7" and formula((3, 7), 7) == "7 / 3"


def test_virl_observation_flags_the_action_space() -> None:
    suites = suite_configs("virl", {})
    obs_id, _ = DiscreteTaskEnv({"family": "virl", "task": suites["in_distribution"]}).reset(seed=0)
    obs_ood, _ = DiscreteTaskEnv({"family": "virl", "task": suites["ood_rule"]}).reset(seed=0)
    assert obs_id[:2].tolist() == [1.0, 0.0] and obs_ood[:2].tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    ("name", "overrides", "field"),
    [
        ("generalpoints", {"num_cards": 4}, "task.generalpoints.num_cards"),
        ("generalpoints", GP | {"observation_mode": "image"}, "observation_mode"),
        ("virl", {"observation_mode": "image"}, "task.virl.observation_mode"),
    ],
)
def test_configs_it_cannot_encode_are_refused(name: str, overrides: dict, field: str) -> None:
    fam = family(name)
    cfg = dataclasses.asdict(fam.config_cls(**overrides))
    with pytest.raises(ValueError, match=field):
        fam.discrete_encoding(cfg)


def test_a_family_without_an_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match="no discrete encoding"):
        DiscreteTaskEnv({"family": "dataset", "task": {}})
