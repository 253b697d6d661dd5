"""The task families behind one small interface, so the rollout and evaluation code never
branches on the family name.

A family knows how to build its env from a config dict, which held-out episodes each
evaluation suite plays (as ``env.reset`` options), and when an episode counts as a success.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from verifier.base import Verifier


@dataclass(frozen=True)
class TaskFamily:
    name: str
    make_env: Callable[[dict[str, Any]], gym.Env]
    """Config dict -> env."""
    eval_reset_options: Callable[[dict[str, Any], int | None, int], list[dict[str, Any]]]
    """(suite config dict, limit, seed) -> reset options of the suite's distinct held-out
    prompts, each once, in a stable order (a seeded sample of ``limit`` when there are more;
    None = all)."""
    suites: Callable[[dict[str, Any]], dict[str, dict[str, Any]]]
    """Training config dict -> {suite name: config dict} (ID first, then the OOD variants,
    then "validation" where the family has one: tuning only, never in a report's default)."""
    episode_success: Callable[[dict[str, Any]], bool]
    """Final step's info -> whether the episode succeeded."""
    make_verifier: Callable[[dict[str, Any]], Verifier]
    """Config dict -> the verifier the env itself uses (shared by training and evaluation)."""


def _gp_env(config: dict[str, Any]) -> gym.Env:
    from envs.generalpoints.env import GeneralPointsEnv

    return GeneralPointsEnv(config)


def _gp_verifier(config: dict[str, Any]) -> Verifier:
    from envs.generalpoints.config import GeneralPointsConfig
    from verifier.generalpoints import GeneralPointsVerifier

    return GeneralPointsVerifier(GeneralPointsConfig.from_dict(config))


def _gp_eval(config: dict[str, Any], limit: int | None, seed: int) -> list[dict[str, Any]]:
    from envs.generalpoints.config import GeneralPointsConfig
    from envs.generalpoints.deal import distinct_tasks

    cfg = GeneralPointsConfig.from_dict(config)
    return [{"task_state": t.to_dict()} for t in distinct_tasks(cfg, limit, seed=seed)]


def _gp_suites(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
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


def _virl_env(config: dict[str, Any]) -> gym.Env:
    from envs.virl.env import VirlEnv

    return VirlEnv(config)


def _virl_verifier(config: dict[str, Any]) -> Verifier:
    from envs.virl.config import VirlConfig
    from verifier.virl import VirlVerifier

    return VirlVerifier(VirlConfig.from_any(config))


def _virl_eval(config: dict[str, Any], limit: int | None, seed: int) -> list[dict[str, Any]]:
    from envs.virl.pools import eval_tasks

    del seed  # the held-out route list is fixed by the config's split seeds
    return eval_tasks(config, limit)


def _virl_suites(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
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


FAMILIES: dict[str, TaskFamily] = {
    "generalpoints": TaskFamily(
        "generalpoints",
        _gp_env,
        _gp_eval,
        _gp_suites,
        lambda info: bool(info.get("verdict", {}).get("success", False)),
        _gp_verifier,
    ),
    "virl": TaskFamily(
        "virl",
        _virl_env,
        _virl_eval,
        _virl_suites,
        lambda info: bool(info.get("metrics", {}).get("route_success", False)),
        _virl_verifier,
    ),
}


def family(name: str) -> TaskFamily:
    if name not in FAMILIES:
        raise ValueError(f"task family {name!r} is not one of {sorted(FAMILIES)}")
    return FAMILIES[name]


def config_dict(config: Any) -> dict[str, Any]:
    """A task config dataclass as the plain dict the families take."""
    return dataclasses.asdict(config)
