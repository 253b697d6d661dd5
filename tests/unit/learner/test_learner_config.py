"""LearnerConfig validation, registry names, lr schedule (pure)."""

from __future__ import annotations

import math

import pytest

from common.typed_config import ConfigError
from learner.config import ADVANTAGE_NAMES, POLICY_LOSS_NAMES, LearnerConfig, PPOConfig
from learner.schedule import lr_multiplier


def test_names_match_the_registries() -> None:
    from learner.advantages import ADVANTAGE_ESTIMATORS
    from learner.losses import POLICY_LOSSES

    assert set(POLICY_LOSS_NAMES) == set(POLICY_LOSSES)
    assert set(ADVANTAGE_NAMES) == set(ADVANTAGE_ESTIMATORS)


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


def test_study_defaults() -> None:
    p = PPOConfig()
    assert (p.policy_loss, p.advantage, p.epochs, p.clip_eps) == ("ppo_turn", "gae", 4, 0.1)
    assert (p.gamma, p.lam, p.thought_coef, p.kl_coef) == (0.9, 0.95, 0.5, 0.0)


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
