"""GeneralPoints registered as a task family, like any plugin (see envs/families.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym

from envs.families import SFTRequest, TaskFamily, register, verdict_success
from envs.generalpoints.config import GeneralPointsConfig
from envs.sft_rows import sft_row, user_message
from verifier.base import Verifier

NAME = "generalpoints"


def make_env(config: dict[str, Any]) -> gym.Env:
    from envs.generalpoints.env import GeneralPointsEnv

    return GeneralPointsEnv(config)


def make_verifier(config: dict[str, Any]) -> Verifier:
    from verifier.generalpoints import GeneralPointsVerifier

    return GeneralPointsVerifier(GeneralPointsConfig.from_dict(config))


def eval_reset_options(config: dict[str, Any], limit: int | None, seed: int) -> list[dict]:
    from envs.generalpoints.deal import distinct_tasks

    cfg = GeneralPointsConfig.from_dict(config)
    return [{"task_state": t.to_dict()} for t in distinct_tasks(cfg, limit, seed=seed)]


def suites(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    other_rule = "ordinal" if config["face_card_rule"] == "ten" else "ten"
    out = {
        "in_distribution": config | {"split": "eval"},
        # The other rule is never trained: every eligible hand under it, no split needed.
        "ood_rule": config | {"split": "all", "face_card_rule": other_rule},
    }
    if config["observation_mode"] == "image":
        # The study's visual shift: train on black suits, test on red.
        out["ood_visual"] = config | {"split": "eval", "suit_color": "red"}
    out["validation"] = config | {"split": "validation"}
    return out


def sft_examples(request: SFTRequest) -> Iterator[dict[str, Any]]:
    """Single-turn, as in the study: the dealt hand -> the solver's answer (no revisions)."""
    from envs.generalpoints.oracle import oracle_answer

    env = make_env(request.config)
    store = request.image_store
    for i in range(request.n):
        obs, info = env.reset(seed=request.seed + i)
        ref = store.put(obs["image"]) if store is not None and "image" in obs else None
        messages = [
            user_message(obs["text"], ref is not None),
            {"role": "assistant", "content": oracle_answer(env.task, thought=request.thought)},
        ]
        yield sft_row(messages, ref, NAME, request.config, info["task_state"])


def discrete_encoding(config: dict[str, Any]):  # -> envs.discrete.DiscreteEncoding
    from envs.generalpoints.discrete import encoding

    return encoding(config)


FAMILY = register(
    TaskFamily(
        name=NAME,
        config_cls=GeneralPointsConfig,
        make_env=make_env,
        make_verifier=make_verifier,
        suites=suites,
        eval_reset_options=eval_reset_options,
        episode_success=verdict_success,
        budget_field="viter",  # attempts per hand
        sft_examples=sft_examples,
        description="GeneralPoints: make a target number from the cards (the study's task)",
        discrete_encoding=discrete_encoding,
    ),
    replace=True,
)
