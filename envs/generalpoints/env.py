"""GeneralPoints as a multi-turn gymnasium environment (sequential verification-revision).

Episode: `reset` deals a hand and returns the first user turn. Each `step(response_text)` is
one model attempt, scored by `GeneralPointsVerifier` (the same function evaluation uses). On
success the episode terminates; on failure the verifier's feedback ("You failed this trial
because ...") is the next user turn; after `viter` failed attempts the episode is truncated
and the last turn's reward also gets `rewards.budget_exceeded` (-1 by default) *added*: it is
an episode-level event, separate from the per-response penalties. The budget is part of the
task, so learners should treat truncation as terminal (no bootstrapping from the final
observation).

Spaces: observation Dict(text=Text) in text mode, plus image=Box(uint8, HxWx3) in image mode
(the same table image on every turn; a chat template attaches it to the first turn only).
Action: Text over printable ASCII; `step` accepts any str, as model output may hold more.
"""

from __future__ import annotations

import string
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.generalpoints.card_images import load_deck
from envs.generalpoints.config import GeneralPointsConfig
from envs.generalpoints.deal import deal_task, eligible_hands
from envs.generalpoints.prompts import budget_feedback, initial_prompt
from envs.generalpoints.render import render_hand
from verifier.base import Verdict, verify_total
from verifier.generalpoints import GeneralPointsVerifier
from verifier.generalpoints_rules import GeneralPointsTask

# gymnasium's Text default charset is alphanumeric only; prompts hold punctuation and newlines.
TEXT_CHARSET = frozenset(string.printable)
MAX_OBSERVATION_CHARS = 8192


class GeneralPointsEnv(gym.Env[dict[str, Any], str]):
    """Card-arithmetic episodes with up to `viter` attempts; see the module docstring."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array", "ansi"], "render_fps": 1}

    def __init__(
        self,
        config: GeneralPointsConfig | dict[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode: {render_mode!r} is not one of {self.metadata['render_modes']}"
            )
        self.config = GeneralPointsConfig.coerce(config)
        self.render_mode = render_mode
        self.verifier = GeneralPointsVerifier(self.config)
        eligible_hands(self.config)  # fail at construction, not first reset, if none exist
        draws_tables = self.config.observation_mode == "image" or render_mode == "rgb_array"
        if draws_tables and self.config.card_images is not None:
            load_deck(self.config.card_images)  # decode every card now: a bad file fails here
        size = self.config.image_size
        obs_spaces: dict[str, spaces.Space] = {
            "text": spaces.Text(MAX_OBSERVATION_CHARS, min_length=0, charset=TEXT_CHARSET)
        }
        if self.config.observation_mode == "image":
            obs_spaces["image"] = spaces.Box(0, 255, (size, size, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.Text(
            self.config.max_response_chars, min_length=0, charset=TEXT_CHARSET
        )
        self.task: GeneralPointsTask | None = None
        self.attempts = 0
        self.done = False
        self._image: np.ndarray | None = None
        self._last_text = ""

    def _observation(self, text: str) -> dict[str, Any]:
        self._last_text = text
        obs: dict[str, Any] = {"text": text}
        if self.config.observation_mode == "image":
            # A fresh array per call: callers may keep or modify what they were given.
            obs["image"] = self._table_image().copy()
        return obs

    def _table_image(self) -> np.ndarray:
        assert self.task is not None
        if self._image is None:
            self._image = render_hand(
                self.task.cards, self.config.image_size, self.config.card_images
            )
        return self._image

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Deal a hand (or use options["task_state"], a GeneralPointsTask or its dict)."""
        super().reset(seed=seed)
        state = (options or {}).get("task_state")
        if state is not None:
            self.task = GeneralPointsTask.coerce(state)
        else:
            self.task = deal_task(self.config, self.np_random)
        self.attempts = 0
        self.done = False
        self._image = None
        obs = self._observation(initial_prompt(self.task, self.config.observation_mode))
        return obs, {"task_state": self.task.to_dict(), "attempt": 0}

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.task is None:
            raise RuntimeError("call reset() before step()")
        if self.done:
            raise RuntimeError("the episode is over; call reset()")
        return self.apply_verdict(verify_total(self.verifier, self.task, action))

    def task_state(self) -> dict[str, Any]:
        """The hidden task state a verifier scores against (JSON-able)."""
        if self.task is None:
            raise RuntimeError("call reset() before task_state()")
        return self.task.to_dict()

    def apply_verdict(
        self, verdict: Verdict | dict[str, Any]
    ) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Advance the episode with a verdict computed elsewhere (a verifier actor).

        ``step(text)`` is ``apply_verdict(verify(task_state, text))``; splitting the two lets
        verification run in its own actor pool while the env keeps the episode's state.
        """
        if self.task is None or self.done:
            raise RuntimeError("apply_verdict() needs a running episode; call reset()")
        if isinstance(verdict, dict):
            verdict = Verdict(**verdict)
        self.attempts += 1
        reward = verdict.reward
        terminated = verdict.success
        truncated = not terminated and self.attempts >= self.config.viter
        budget_penalty = self.config.rewards.budget_exceeded if truncated else 0.0
        reward += budget_penalty
        text = verdict.feedback
        if truncated:
            text = budget_feedback(text, self.config.viter)
        self.done = terminated or truncated
        info = {
            "task_state": self.task.to_dict(),
            "verdict": verdict.to_dict(),
            "attempt": self.attempts,
            "budget_penalty": budget_penalty,
        }
        return self._observation(text), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | str | None:
        if self.render_mode is None or self.task is None:
            return None
        if self.render_mode == "ansi":
            return self._last_text
        return self._table_image()
