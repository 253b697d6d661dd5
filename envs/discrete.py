"""A task as a small discrete-action gymnasium env, for policies without a language model.

A family that has one supplies a ``DiscreteEncoding`` (``TaskFamily.discrete_encoding``): a
fixed-size numeric view of what its prompt tells the model, a finite menu of answers, and the
answer text of each menu item. ``DiscreteTaskEnv`` wraps the family's own env with it: a
chosen menu item becomes the text answer, and the family's env scores that text with the
family's verifier, exactly as it scores a language model's answer. So a baseline policy (the
RLlib MLP of ``veriray baseline rllib``) and the language model are judged by the same code on
the same held-out prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.families import family


@dataclass(frozen=True)
class DiscreteEncoding:
    """How a family's episodes look to a non-language policy."""

    size: int
    """Length of the observation vector (float32 values in [0, 1])."""
    actions: tuple[str, ...]
    """Names of the answer menu, one per discrete action (for reports and tests)."""
    observe: Callable[[gym.Env], np.ndarray]
    """The family's running env -> the observation vector of its current turn."""
    answer: Callable[[gym.Env, int], str]
    """(the family's running env, action index) -> the text answer its verifier scores."""
    expert: Callable[[gym.Env], int] | None = None
    """The running env -> the correct action index (tests: the menu can express the expert's
    answer), or None."""


def one_hot(index: int | None, size: int) -> np.ndarray:
    """A float32 one-hot vector (all zeros for None)."""
    out = np.zeros(size, dtype=np.float32)
    if index is not None:
        out[index] = 1.0
    return out


class DiscreteTaskEnv(gym.Env):
    """A family's env behind its discrete encoding: Box observations, Discrete actions.

    env_config: {"family": name, "task": the family's config dict, "reset_options": optional
    list of reset options played in turn (evaluation suites), "max_turns": optional cap on
    turns per episode (default 64)}. ``info["success"]`` on the final step is the family's
    episode success.
    """

    def __init__(self, env_config: dict[str, Any]) -> None:
        self.family = family(str(env_config["family"]))
        if self.family.discrete_encoding is None:
            raise ValueError(
                f"task.family: {self.family.name!r} has no discrete encoding; a non-language "
                "baseline needs one (TaskFamily.discrete_encoding)"
            )
        task = dict(env_config["task"])
        self.encoding = self.family.discrete_encoding(task)
        self.env = self.family.make_env(task)
        self.reset_options: Sequence[dict[str, Any]] | None = env_config.get("reset_options")
        self.max_turns = int(env_config.get("max_turns", 64))
        self._next = 0
        self._turns = 0
        self.observation_space = spaces.Box(0.0, 1.0, (self.encoding.size,), np.float32)
        self.action_space = spaces.Discrete(len(self.encoding.actions))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options is None and self.reset_options:
            options = self.reset_options[self._next % len(self.reset_options)]
            self._next += 1
        # The inner env draws its task from its own generator: seed it from ours.
        inner_seed = int(self.np_random.integers(2**31)) if options is None else None
        _, info = self.env.reset(seed=inner_seed, options=options)
        self._turns = 0
        return self.encoding.observe(self.env), {"task_state": info.get("task_state")}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        text = self.encoding.answer(self.env, int(action))
        _, reward, terminated, truncated, info = self.env.step(text)
        self._turns += 1
        if not (terminated or truncated) and self._turns >= self.max_turns:
            truncated = True
        done = terminated or truncated
        out = {"success": bool(done and self.family.episode_success(info))}
        obs = np.zeros(self.encoding.size, np.float32) if done else self.encoding.observe(self.env)
        return obs, float(reward), terminated, truncated, out
