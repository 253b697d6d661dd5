"""The gymnasium adapter: a text gymnasium env played through veriray's episode protocol.

veriray splits a turn in two, so that scoring runs in the verifier actor pool while the env
actor keeps the episode: ``verify(task_state, text) -> Verdict`` then
``env.apply_verdict(verdict)``. A gymnasium env's ``step(action)`` does both at once and its
state lives in the env object, so the adapter's verifier only carries the answer across
(``fields["action"]``) and ``apply_verdict`` steps the wrapped env with it: the wrapped env's
reward is the turn's reward, its termination ends the episode. Nothing of the protocol shows
to the env's author: any env with Text observation and action spaces works.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
from gymnasium import spaces

from envs.gym_text.config import GymTextConfig
from verifier.base import Verdict

ACTION_FIELD = "action"


def coerce(config: GymTextConfig | dict[str, Any]) -> GymTextConfig:
    return config if isinstance(config, GymTextConfig) else GymTextConfig(**config)


def _is_text(space: gym.Space) -> bool:
    if isinstance(space, spaces.Text):
        return True
    return isinstance(space, spaces.Dict) and isinstance(space.spaces.get("text"), spaces.Text)


def make_inner(cfg: GymTextConfig) -> gym.Env:
    """gymnasium.make the configured env and check that it speaks text."""
    try:
        env = gym.make(cfg.env_id, **cfg.env_kwargs)
    except Exception as err:  # an unregistered id, a bad kwarg: say which field
        raise ValueError(f"env_id: gymnasium.make({cfg.env_id!r}) failed: {err}") from err
    for what in ("observation_space", "action_space"):
        space = getattr(env, what)
        if not _is_text(space):
            env.close()
            raise ValueError(
                f"env_id: {cfg.env_id}'s {what} is {type(space).__name__}, not "
                "gymnasium.spaces.Text (or a Dict with a Text 'text' entry)"
            )
    return env


class PassThroughVerifier:
    """Carries the answer to the env (the wrapped env scores it in its own step)."""

    def verify(self, task_state: Any, response_text: str) -> Verdict:
        del task_state
        return Verdict(0.0, False, "", {ACTION_FIELD: str(response_text)})


class GymTextEnv(gym.Env[dict[str, Any], str]):
    """A text gymnasium env as a veriray episode (see the module docstring)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, config: GymTextConfig | dict[str, Any]) -> None:
        self.config = coerce(config)
        self.inner = make_inner(self.config)
        self.observation_space = spaces.Dict({"text": self._text_space()})
        self.action_space = self.inner.action_space
        self.turns = 0
        self.done = False
        self.seed_used: int | None = None

    def _text_space(self) -> spaces.Space:
        space = self.inner.observation_space
        return space if isinstance(space, spaces.Text) else space.spaces["text"]  # type: ignore[attr-defined]

    @staticmethod
    def _text(obs: Any) -> str:
        return str(obs["text"] if isinstance(obs, dict) else obs)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """options["seed"] (an evaluation episode) or ``seed`` reset the wrapped env."""
        rest = dict(options or {})
        seed = rest.pop("seed", seed)
        self.seed_used = seed
        obs, _ = self.inner.reset(seed=seed, options=rest or None)
        self.turns = 0
        self.done = False
        return {"text": self._text(obs)}, {"task_state": self.task_state()}

    def task_state(self) -> dict[str, Any]:
        # The env's hidden state stays in the env object; this identifies the episode.
        return {"seed": self.seed_used, "turn": self.turns}

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        return self.apply_verdict(PassThroughVerifier().verify(self.task_state(), action))

    def apply_verdict(
        self, verdict: Verdict | dict[str, Any]
    ) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.done:
            raise RuntimeError("apply_verdict() needs a running episode; call reset()")
        if isinstance(verdict, dict):
            verdict = Verdict(**verdict)
        action = str(verdict.fields.get(ACTION_FIELD, ""))
        obs, reward, terminated, truncated, inner_info = self.inner.step(action)
        self.turns += 1
        truncated = bool(truncated) or (not terminated and self.turns >= self.config.max_turns)
        if self.config.success_key in inner_info:
            success = bool(inner_info[self.config.success_key])
        else:
            success = bool(terminated) and float(reward) > 0
        self.done = bool(terminated) or truncated
        info = {
            "task_state": self.task_state(),
            # The verdict as the metrics read it: this turn's reward and success.
            "verdict": {
                "reward": float(reward),
                "success": success and self.done,
                "feedback": "",
                "fields": {},
            },
            "success": success and self.done,
            "env_info": {k: v for k, v in inner_info.items() if _plain(v)},
        }
        return {"text": self._text(obs)}, float(reward), bool(terminated), truncated, info

    def close(self) -> None:
        self.inner.close()


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None
