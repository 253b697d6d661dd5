"""GeneralPoints with two cards, for a policy without a language model (envs.discrete).

Observation (what the prompt says, as numbers): each card's rank one-hot (13 + 13), the face
card rule one-hot ("ten", "ordinal"), and the target as a fraction of the largest two-card
result (169) plus its 8 binary digits. Actions: an operation (+ - * /) and an order (the
cards as shown, or swapped), 8 in all. The answer is the JSON object the prompt asks for with
the formula over the cards' numbers *under the prompt's rule*: the menu does the translation
from cards to numbers, and the policy chooses only the arithmetic. Trained on the "ten" rule,
the policy has never been rewarded with the "ordinal" flag on: the OOD suite asks whether the
choice it learned carries over to J/Q/K counting as 11/12/13.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import gymnasium as gym
import numpy as np

from envs.discrete import DiscreteEncoding, one_hot
from envs.generalpoints.config import GeneralPointsConfig
from verifier.generalpoints_rules import FACE_CARD_RULES, RANKS, GeneralPointsTask

OPERATIONS = ("+", "-", "*", "/")
ORDERS = ("as shown", "swapped")
ACTIONS = tuple(f"{op} ({order})" for op in OPERATIONS for order in ORDERS)
TARGET_BITS = 8
MAX_TARGET = 13 * 13
SIZE = 2 * len(RANKS) + len(FACE_CARD_RULES) + 1 + TARGET_BITS


def _task(env: gym.Env) -> GeneralPointsTask:
    task = getattr(env, "task", None)
    if not isinstance(task, GeneralPointsTask):
        raise RuntimeError("the GeneralPoints env has no dealt hand; call reset()")
    return task


def observe(env: gym.Env) -> np.ndarray:
    task = _task(env)
    target = min(max(task.target, 0), 2**TARGET_BITS - 1)
    bits = np.array([(target >> i) & 1 for i in range(TARGET_BITS)], dtype=np.float32)
    return np.concatenate(
        [
            one_hot(RANKS.index(task.ranks[0]), len(RANKS)),
            one_hot(RANKS.index(task.ranks[1]), len(RANKS)),
            one_hot(FACE_CARD_RULES.index(task.face_card_rule), len(FACE_CARD_RULES)),
            np.array([min(target / MAX_TARGET, 1.0)], dtype=np.float32),
            bits,
        ]
    )


def formula(numbers: tuple[int, ...], action: int) -> str:
    """The formula of an action over the two numbers: 'a op b' in the chosen order."""
    op, order = divmod(action, len(ORDERS))
    a, b = numbers if order == 0 else numbers[::-1]
    return f"{a} {OPERATIONS[op]} {b}"


def answer(env: gym.Env, action: int) -> str:
    task = _task(env)
    if not 0 <= action < len(ACTIONS):
        raise ValueError(f"action: {action} is not in [0, {len(ACTIONS)})")
    return json.dumps(
        {
            "cards": list(task.ranks),
            "number": list(task.numbers),
            "formula": formula(task.numbers, action),
        }
    )


def _value(numbers: tuple[int, ...], action: int) -> Fraction | None:
    op, order = divmod(action, len(ORDERS))
    a, b = (Fraction(n) for n in (numbers if order == 0 else numbers[::-1]))
    if OPERATIONS[op] == "/":
        return None if b == 0 else a / b
    return {"+": a + b, "-": a - b, "*": a * b}[OPERATIONS[op]]


def expert(env: gym.Env) -> int:
    """The first action whose formula reaches the target."""
    task = _task(env)
    for action in range(len(ACTIONS)):
        if _value(task.numbers, action) == task.target:
            return action
    raise ValueError(f"task: no one-operation formula over {list(task.numbers)} reaches it")


def encoding(config: dict[str, Any]) -> DiscreteEncoding:
    cfg = GeneralPointsConfig.from_dict(config)
    if cfg.num_cards != 2:
        raise ValueError(
            f"task.generalpoints.num_cards: the discrete baseline encodes two-card hands "
            f"(an operation and an order), got {cfg.num_cards}; set num_cards: 2"
        )
    if cfg.observation_mode != "text":
        raise ValueError(
            "task.generalpoints.observation_mode: the discrete baseline encodes GP-L (it reads "
            "the hand, not the table image); set observation_mode: text"
        )
    return DiscreteEncoding(
        size=SIZE, actions=ACTIONS, observe=observe, answer=answer, expert=expert
    )
