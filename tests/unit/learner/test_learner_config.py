"""LearnerConfig validation, registry names, lr schedule (pure)."""

from __future__ import annotations

import math
import typing

import pytest

from common.typed_config import ConfigError
from learner.config import (
    ADVANTAGE_NAMES,
    KL_ESTIMATOR_NAMES,
    LOSS_AGG_NAMES,
    POLICY_LOSS_NAMES,
    TRUNCATION_NAMES,
    LearnerConfig,
    PPOConfig,
)
from learner.schedule import lr_multiplier


def test_names_match_the_registries() -> None:
    from learner.advantages import ADVANTAGE_ESTIMATORS
    from learner.aggregation import LOSS_AGGREGATIONS
    from learner.kl import KL_ESTIMATORS
    from learner.losses import POLICY_LOSSES
    from learner.truncation import TRUNCATION_HANDLERS

    assert set(POLICY_LOSS_NAMES) == set(POLICY_LOSSES)
    assert set(ADVANTAGE_NAMES) == set(ADVANTAGE_ESTIMATORS)
    assert set(LOSS_AGG_NAMES) == set(LOSS_AGGREGATIONS)
    assert set(KL_ESTIMATOR_NAMES) == set(KL_ESTIMATORS)
    assert set(TRUNCATION_NAMES) == set(TRUNCATION_HANDLERS)
    # The config's Literal types list the same names (what `config explain` shows).
    hints = typing.get_type_hints(PPOConfig)
    for field, names in (
        ("policy_loss", POLICY_LOSS_NAMES),
        ("advantage", ADVANTAGE_NAMES),
        ("kl_estimator", KL_ESTIMATOR_NAMES),
        ("truncated_response", TRUNCATION_NAMES),
    ):
        assert set(typing.get_args(hints[field])) == set(names), field
    loss_agg = {a for arg in typing.get_args(hints["loss_agg"]) for a in typing.get_args(arg)}
    assert loss_agg == set(LOSS_AGG_NAMES)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"critic": "none"}, "critic"),  # gae needs a value model
        ({"lr_schedule": "cosine", "total_steps": 0}, "total_steps"),
        ({"min_lr_ratio": 2.0}, "min_lr_ratio"),
        ({"value_head_hidden": -1}, "value_head_hidden"),
    ],
)
def test_errors_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}:"):
        LearnerConfig(**kwargs)


def test_ppo_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^clip_eps:"):
        PPOConfig(clip_eps=1.5)
    # Loaded as a section, the path is added once: learner.ppo.clip_eps.
    from cluster.config import load_experiment

    with pytest.raises(ConfigError, match=r"^learner\.ppo\.clip_eps: must be in \(0, 1\)"):
        load_experiment(None, ["learner.ppo.clip_eps=1.5"])
    LearnerConfig(critic="none", ppo=PPOConfig(policy_loss="grpo", advantage="grpo"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kl_coef": -0.1}, "kl_coef"),
        ({"entropy_coef": -1e-3}, "entropy_coef"),
        ({"clip_eps_low": 1.0}, "clip_eps_low"),
        ({"clip_eps_high": 0.0}, "clip_eps_high"),
        ({"dynamic_sampling_max_refills": -1}, "dynamic_sampling_max_refills"),
        ({"truncated_penalty": 0.5}, "truncated_penalty"),
    ],
)
def test_new_ppo_knobs_errors_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}:"):
        PPOConfig(**kwargs)


def test_new_ppo_knobs_load_from_overrides() -> None:
    from cluster.config import load_experiment

    cfg = load_experiment(
        None,
        [
            "learner.ppo.kl_coef=0.05",
            "learner.ppo.kl_estimator=k1",
            "learner.ppo.kl_mode=reward",
            "learner.ppo.entropy_coef=0.001",
            "learner.ppo.clip_eps_low=0.2",
            "learner.ppo.clip_eps_high=0.28",
            "learner.ppo.loss_agg=seq-mean-token-sum",
            "learner.ppo.truncated_response=mask",
            "learner.ppo.dynamic_sampling=true",
            "rl.samples_per_task=4",
        ],
    )
    p = cfg.learner.ppo
    assert (p.kl_coef, p.kl_estimator, p.kl_mode, p.entropy_coef) == (0.05, "k1", "reward", 0.001)
    assert (p.clip_eps_low, p.clip_eps_high, p.loss_agg) == (0.2, 0.28, "seq-mean-token-sum")
    assert (p.truncated_response, p.dynamic_sampling) == ("mask", True)
    with pytest.raises(ConfigError, match=r"^learner\.ppo\.loss_agg:"):
        load_experiment(None, ["learner.ppo.loss_agg=token_sum"])
    with pytest.raises(ConfigError, match=r"^learner\.ppo\.dynamic_sampling: needs rl\.samples"):
        load_experiment(None, ["learner.ppo.dynamic_sampling=true", "rl.samples_per_task=1"])


def test_policy_params_map_the_config() -> None:
    from learner.ppo import policy_params

    p = policy_params(PPOConfig(clip_eps=0.1, clip_eps_high=0.3, kl_coef=0.1, entropy_coef=0.01))
    assert (p.clip_eps, p.clip_eps_high, p.kl_coef, p.entropy_coef) == (0.1, 0.3, 0.1, 0.01)
    assert policy_params(PPOConfig(clip_eps_low=0.2)).clip_eps == 0.2
    # With the KL in the reward, the loss carries no KL term of its own.
    assert policy_params(PPOConfig(kl_coef=0.1, kl_mode="reward")).kl_coef == 0.0


def test_study_defaults() -> None:
    p = PPOConfig()
    assert (p.policy_loss, p.advantage, p.epochs, p.clip_eps) == ("ppo_turn", "gae", 4, 0.1)
    assert (p.gamma, p.lam, p.thought_coef, p.kl_coef) == (0.9, 0.95, 0.5, 0.0)
    # The new knobs default to the study's algorithm: nothing changes unless asked for.
    assert (p.entropy_coef, p.clip_eps_low, p.clip_eps_high, p.loss_agg) == (0.0, None, None, None)
    assert (p.dynamic_sampling, p.truncated_response) == (False, "keep")


def test_lr_schedules() -> None:
    const = LearnerConfig(warmup_steps=4)
    assert [lr_multiplier(s, const) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cos = LearnerConfig(lr_schedule="cosine", warmup_steps=2, total_steps=12, min_lr_ratio=0.1)
    assert lr_multiplier(2, cos) == pytest.approx(1.0)
    assert lr_multiplier(7, cos) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_multiplier(12, cos) == pytest.approx(0.1)
    assert lr_multiplier(50, cos) == pytest.approx(0.1)
    lin = LearnerConfig(lr_schedule="linear", total_steps=10)
    assert [round(lr_multiplier(s, lin), 6) for s in (0, 5, 10)] == [1.0, 0.5, 0.0]
