"""V-IRL-L for a policy without a language model (envs.discrete).

Observation (what the prompt says at this point, as numbers): the action space the prompt
offers one-hot ("absolute", "relative"), whether the point is an intersection, whether the
instruction being carried out turns here or ends the route here, and the turn it asks for in
both wordings the instructions use: the compass direction to face (8) and the relative turn
(4). Actions: forward(), stop() and turn_direction(...) with each of the 8 absolute and 4
relative directions, 14 in all. The answer is the JSON object the prompt asks for, with the
expert's observation and instruction fields and the chosen action: the policy chooses only the
action. Trained on the absolute action space, it has never been rewarded with the "relative"
flag on: the OOD suite asks whether what it learned carries over to the other rule.
"""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym
import numpy as np

from envs.discrete import DiscreteEncoding, one_hot
from envs.virl.config import VirlConfig
from envs.virl.directions import compass_label, relative_label
from envs.virl.oracle import OracleStep, observation_summary
from verifier.virl_rules import ABSOLUTE_DIRECTIONS, RELATIVE_DIRECTIONS

ACTION_SPACES = ("absolute", "relative")
ACTIONS = (
    "forward()",
    "stop()",
    *(f"turn_direction({d})" for d in ABSOLUTE_DIRECTIONS),
    *(f"turn_direction({d})" for d in RELATIVE_DIRECTIONS),
)
SIZE = len(ACTION_SPACES) + 3 + len(ABSOLUTE_DIRECTIONS) + len(RELATIVE_DIRECTIONS)


def _step(env: gym.Env) -> OracleStep:
    if getattr(env, "route", None) is None:
        raise RuntimeError("the V-IRL env has no route; call reset()")
    steps = env.oracle  # type: ignore[attr-defined]
    return steps[int(env.task_state()["step_index"])]  # type: ignore[attr-defined]


def observe(env: gym.Env) -> np.ndarray:
    step, route = _step(env), env.route  # type: ignore[attr-defined]
    absolute = relative = None
    if step.kind == "turn" and step.target_heading is not None:
        label = step.label or compass_label(step.target_heading)
        absolute = ABSOLUTE_DIRECTIONS.index(label)
        relative = RELATIVE_DIRECTIONS.index(relative_label(step.heading, step.target_heading))
    space = env.config.action_space  # type: ignore[attr-defined]
    flags = [
        float(route.intersections[step.point_index]),
        float(step.kind == "turn"),
        float(step.kind == "stop"),
    ]
    return np.concatenate(
        [
            one_hot(ACTION_SPACES.index(space), len(ACTION_SPACES)),
            np.array(flags, dtype=np.float32),
            one_hot(absolute, len(ABSOLUTE_DIRECTIONS)),
            one_hot(relative, len(RELATIVE_DIRECTIONS)),
        ]
    )


def answer(env: gym.Env, action: int) -> str:
    if not 0 <= action < len(ACTIONS):
        raise ValueError(f"action: {action} is not in [0, {len(ACTIONS)})")
    step, route = _step(env), env.route  # type: ignore[attr-defined]
    return json.dumps(
        {
            "current observation": observation_summary(route, step),
            "current instruction": route.sentences[step.sentence_index],
            "action": ACTIONS[action],
        }
    )


def expert(env: gym.Env) -> int:
    return ACTIONS.index(_step(env).action(env.config.action_space))  # type: ignore[attr-defined]


def encoding(config: dict[str, Any]) -> DiscreteEncoding:
    cfg = VirlConfig.from_any(config)
    if cfg.observation_mode != "text":
        raise ValueError(
            "task.virl.observation_mode: the discrete baseline encodes V-IRL-L (it reads the "
            "route's state, not the street views); set observation_mode: text"
        )
    return DiscreteEncoding(
        size=SIZE, actions=ACTIONS, observe=observe, answer=answer, expert=expert
    )
