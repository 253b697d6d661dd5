"""GeneralPoints: make a target number from playing cards with + - * / (paper task 1).

Modules: config (GeneralPointsConfig), solver (exact Fraction solver), deal (held-out split,
dealing, eval_tasks), prompts (the text the env shows the model), render (table images: the
Pillow-drawn deck), card_images and deck_files (a user's folder of card images, laid out as the
study does), oracle (expert answers for SFT), env (GeneralPointsEnv). The verifier lives in
verifier.generalpoints and the rules it checks (Card, GeneralPointsTask, rank_value,
RewardTable) in verifier.generalpoints_rules: imports run along the data flow, so envs may
import verifier and never the other way round.

`GeneralPointsEnv` is loaded lazily so that configs and dealing load without gymnasium and
Pillow.
"""

from __future__ import annotations

from typing import Any

from envs.generalpoints.config import GeneralPointsConfig
from envs.generalpoints.deal import deal_task, eval_tasks, split_keys
from envs.generalpoints.oracle import oracle_answer, oracle_formula
from envs.generalpoints.solver import is_solvable, solve
from verifier.generalpoints_rules import Card, GeneralPointsTask, RewardTable, make_task, rank_value

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
