"""The dataset task registered as the family "dataset" (see envs/families.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from envs.dataset.config import TRAIN, VALIDATION, DatasetTaskConfig
from envs.dataset.env import DatasetEnv, DatasetVerifier
from envs.dataset.files import read_rows
from envs.families import SFTRequest, TaskFamily, register, verdict_success
from envs.sft_rows import sft_row, user_message
from verifier.base import Verifier

NAME = "dataset"


def make_env(config: dict[str, Any]) -> gym.Env:
    return DatasetEnv(config)


def make_verifier(config: dict[str, Any]) -> Verifier:
    return DatasetVerifier(config)


def suites(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One suite per eval file, in the config's order; then validation when there is one."""
    out = {name: config | {"split": name} for name in config["eval_files"]}
    if config.get("validation_file"):
        out[VALIDATION] = config | {"split": VALIDATION}
    return out


def eval_reset_options(config: dict[str, Any], limit: int | None, seed: int) -> list[dict]:
    """Every row of the suite's file once (a seeded sample of ``limit``, in file order)."""
    n = len(read_rows(DatasetTaskConfig(**config).path()))
    rows = list(range(n))
    if limit is not None and limit < n:
        rows = sorted(np.random.default_rng(seed).choice(n, size=limit, replace=False).tolist())
    return [{"row": i} for i in rows]


def sft_unavailable(config: dict[str, Any]) -> str | None:
    if config.get("sft_column") is None:
        return "task.dataset.sft_column is not set (name the column of expert answers)"
    return None


def sft_examples(request: SFTRequest) -> Iterator[dict[str, Any]]:
    """``n`` single-turn conversations: a training row's prompt -> its sft_column answer
    (rows in a seeded order, cycled when n is more than the file holds)."""
    env = DatasetEnv(request.config)
    order = np.random.default_rng(request.seed).permutation(len(env.rows)).tolist()
    for i in range(request.n):
        obs, info = env.reset(options={"row": order[i % len(order)]})
        messages = [user_message(obs["text"], False)]
        if "system" in obs:
            messages.insert(0, {"role": "system", "content": obs["system"]})
        messages.append({"role": "assistant", "content": env.expert_answer()})
        yield sft_row(messages, None, NAME, request.config, info["task_state"])


def mean_reward(episodes: Sequence[Any]) -> dict[str, float]:
    """The mean episode return: what the reward function says beyond success."""
    if not episodes:
        return {}
    return {"mean_reward": float(np.mean([e.total_reward for e in episodes]))}


FAMILY = register(
    TaskFamily(
        name=NAME,
        config_cls=DatasetTaskConfig,
        make_env=make_env,
        make_verifier=make_verifier,
        suites=suites,
        eval_reset_options=eval_reset_options,
        episode_success=verdict_success,
        budget_field="max_turns",
        train_config=lambda c: c | {"split": TRAIN},
        sft_examples=sft_examples,
        sft_unavailable=sft_unavailable,
        extra_metrics=mean_reward,
        description="prompts from a Parquet/JSONL/saved dataset, scored by your reward function",
    ),
    replace=True,
)
