"""The gymnasium adapter registered as the family "gymnasium" (see envs/families.py)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from envs.families import TaskFamily, register
from envs.gym_text.adapter import GymTextEnv, PassThroughVerifier
from envs.gym_text.config import EVAL_SEED_BASE, GymTextConfig
from verifier.base import Verifier

NAME = "gymnasium"


def make_env(config: dict[str, Any]) -> gym.Env:
    return GymTextEnv(config)


def make_verifier(config: dict[str, Any]) -> Verifier:
    del config
    return PassThroughVerifier()


def suites(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One suite per eval_suites entry: the training kwargs with the suite's overrides."""
    return {
        name: config | {"env_kwargs": config["env_kwargs"] | overrides}
        for name, overrides in config["eval_suites"].items()
    }


def eval_reset_options(config: dict[str, Any], limit: int | None, seed: int) -> list[dict]:
    del seed  # fixed seeds: the same episodes at every evaluation point
    n = config["eval_episodes"] if limit is None else min(limit, config["eval_episodes"])
    return [{"seed": EVAL_SEED_BASE + i} for i in range(n)]


def episode_success(info: dict[str, Any]) -> bool:
    return bool(info.get("success", False))


FAMILY = register(
    TaskFamily(
        name=NAME,
        config_cls=GymTextConfig,
        make_env=make_env,
        make_verifier=make_verifier,
        suites=suites,
        eval_reset_options=eval_reset_options,
        episode_success=episode_success,
        budget_field=None,  # the env decides how many turns it grants
        train_config=lambda c: c,  # training plays env_kwargs as given
        description="any gymnasium env with Text observation and action spaces (env_id)",
    ),
    replace=True,
)
