"""V-IRL registered as a task family, like any plugin (see envs/families.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym

from envs.families import SFTRequest, TaskFamily, register
from envs.sft_rows import sft_row, text_only, user_message
from envs.virl.config import VirlConfig
from verifier.base import Verifier

NAME = "virl"
MAX_EXPERT_STEPS = 200  # an expert walk longer than this means a broken route: fail loudly


def make_env(config: dict[str, Any]) -> gym.Env:
    from envs.virl.env import VirlEnv

    return VirlEnv(config)


def make_verifier(config: dict[str, Any]) -> Verifier:
    from verifier.virl import VirlVerifier

    return VirlVerifier(VirlConfig.from_any(config))


def eval_reset_options(config: dict[str, Any], limit: int | None, seed: int) -> list[dict]:
    from envs.virl.pools import eval_tasks

    del seed  # the held-out route list is fixed by the config's split seeds
    return eval_tasks(config, limit)


def suites(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    other = "relative" if config["action_space"] == "absolute" else "absolute"
    out = {
        "in_distribution": config | {"split": "eval"},
        "ood_rule": config | {"split": "eval", "action_space": other},
    }
    if config["observation_mode"] == "image":
        if config.get("data_dir") is None:
            out["ood_visual"] = config | {"split": "vln_mini"}
        elif config.get("vln_mini_dir") is not None:
            # Released data: the study's VLN-mini folder is the visual shift, every route once.
            out["ood_visual"] = config | {
                "data_dir": config["vln_mini_dir"],
                "panorama_dir": None,
                "split": "all",
            }
    return out


def route_success(info: dict[str, Any]) -> bool:
    return bool(info.get("metrics", {}).get("route_success", False))


def sft_examples(request: SFTRequest) -> Iterator[dict[str, Any]]:
    """One row per expert step of ``n`` routes; each holds the conversation so far (earlier
    expert answers and the env's replies), so every decision along a route is a target."""
    env = make_env(request.config)
    store = request.image_store
    for i in range(request.n):
        obs, info = env.reset(seed=request.seed + i)
        state = info["task_state"]
        history: list[dict[str, Any]] = []
        for _ in range(MAX_EXPERT_STEPS):
            ref = None
            if store is not None and obs.get("image") is not None:
                ref = store.put(obs["image"])
            expert = {"role": "assistant", "content": env.expert_answer()}
            messages = [*text_only(history), user_message(obs["text"], ref is not None), expert]
            yield sft_row(messages, ref, NAME, request.config, state)
            history = messages
            obs, _, terminated, truncated, _ = env.step(expert["content"])
            if terminated or truncated:
                break
        else:
            raise RuntimeError(f"expert walk of route {i} exceeded {MAX_EXPERT_STEPS} steps")


def discrete_encoding(config: dict[str, Any]):  # -> envs.discrete.DiscreteEncoding
    from envs.virl.discrete import encoding

    return encoding(config)


FAMILY = register(
    TaskFamily(
        name=NAME,
        config_cls=VirlConfig,
        make_env=make_env,
        make_verifier=make_verifier,
        suites=suites,
        eval_reset_options=eval_reset_options,
        episode_success=route_success,
        budget_field="tries_per_point",  # tries per route point
        sft_examples=sft_examples,
        description="V-IRL: follow route instructions through a city (the study's task)",
        discrete_encoding=discrete_encoding,
    ),
    replace=True,
)
