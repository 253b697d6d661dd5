"""GeneralPoints: make a target number from playing cards with + - * / (paper task 1).

Modules: config (GeneralPointsConfig, RewardTable), cards (Card, GeneralPointsTask, rules),
solver (exact Fraction solver), deal (held-out split, dealing, eval_tasks), prompts (all text
shown to the model), render (table images: the Pillow-drawn deck), card_images and deck_files
(a user's folder of card images, laid out as the study does), oracle (expert answers for SFT),
env (GeneralPointsEnv). The verifier lives in verifier.generalpoints.

`GeneralPointsEnv` is loaded lazily: the env imports the verifier, which imports this
package's config and cards, and an eager import here would make that a cycle.
"""

from __future__ import annotations

from typing import Any

from envs.generalpoints.cards import Card, GeneralPointsTask, make_task, rank_value
from envs.generalpoints.config import GeneralPointsConfig, RewardTable
from envs.generalpoints.deal import deal_task, eval_tasks, split_keys
from envs.generalpoints.oracle import oracle_answer, oracle_formula
from envs.generalpoints.solver import is_solvable, solve

__all__ = [
    "Card",
    "GeneralPointsConfig",
    "GeneralPointsEnv",
    "GeneralPointsTask",
    "RewardTable",
    "deal_task",
    "eval_tasks",
    "is_solvable",
    "make_task",
    "oracle_answer",
    "oracle_formula",
    "rank_value",
    "solve",
    "split_keys",
]


def __getattr__(name: str) -> Any:
    if name == "GeneralPointsEnv":
        from envs.generalpoints.env import GeneralPointsEnv

        return GeneralPointsEnv
    raise AttributeError(f"module 'envs.generalpoints' has no attribute {name!r}")
