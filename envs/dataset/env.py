"""The dataset task's env and verifier: one prompt per episode, up to ``max_turns`` answers.

Episode: ``reset`` picks a row (a seeded draw, or options["row"]) and returns its prompt (and
the system prompt) as the first observation. Each answer is scored by the user's reward
function (``DatasetVerifier``, run by the verifier actors); a failed answer's feedback is the
next user turn, as in GeneralPoints' revisions, until one succeeds or ``max_turns`` answers
are spent (truncated, with ``budget_penalty`` added to the last reward).

The task state (what the verifier scores against) is the row's prompt, reference columns and
the attempt number: JSON, so it travels with the episode to any verifier actor.
"""

from __future__ import annotations

import json
import string
from typing import Any, ClassVar

import gymnasium as gym
from gymnasium import spaces

from envs.dataset.config import DatasetTaskConfig
from envs.dataset.files import read_rows
from envs.dataset.reward import RewardRunner, shared_runner
from verifier.base import Verdict, verify_total

TEXT_CHARSET = frozenset(string.printable)
MAX_TEXT_CHARS = 1 << 16


def coerce(config: DatasetTaskConfig | dict[str, Any]) -> DatasetTaskConfig:
    return config if isinstance(config, DatasetTaskConfig) else DatasetTaskConfig(**config)


class DatasetVerifier:
    """Scores an answer with the user's reward function (bounded: envs/dataset/reward.py)."""

    def __init__(self, config: DatasetTaskConfig | dict[str, Any]) -> None:
        self.config = coerce(config)
        self._runner: RewardRunner | None = None  # the child starts on the first answer

    def verify(self, task_state: dict[str, Any], response_text: str) -> Verdict:
        cfg = self.config
        if not isinstance(response_text, str) or not response_text.strip():
            # Not the user's function: an empty answer is a failure, and scoring one is also
            # verify_total's fallback after an error (a second call could run over again).
            return Verdict(cfg.failure_reward, False, cfg.feedback, {"empty": True})
        if self._runner is None:
            self._runner = shared_runner(cfg.reward_fn, cfg.reward_timeout_s)
        example = {
            "prompt": task_state["prompt"],
            "attempt": int(task_state.get("attempt", 0)) + 1,
            **task_state.get("reference", {}),
        }
        reward, success, feedback = self._runner(response_text, example)
        text = "" if success else (feedback or cfg.feedback)
        return Verdict(reward, success, text, {"fn_feedback": feedback is not None})

    def close(self) -> None:
        """Stop the reward function's child (the next answer starts a fresh one)."""
        if self._runner is not None:
            self._runner.close()


class DatasetEnv(gym.Env[dict[str, Any], str]):
    """Prompts of one file (the config's split); see the module docstring."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, config: DatasetTaskConfig | dict[str, Any]) -> None:
        self.config = coerce(config)
        self.rows = read_rows(self.config.path())
        text = spaces.Text(MAX_TEXT_CHARS, min_length=0, charset=TEXT_CHARSET)
        self.observation_space = spaces.Dict({"text": text})
        self.action_space = spaces.Text(MAX_TEXT_CHARS, min_length=0, charset=TEXT_CHARSET)
        self._state: dict[str, Any] | None = None
        self._verifier: DatasetVerifier | None = None
        self.done = False

    def _row_state(self, index: int) -> dict[str, Any]:
        cfg = self.config
        if not 0 <= index < len(self.rows):
            raise ValueError(f"row {index} is not in {cfg.path()} ({len(self.rows)} rows)")
        row = self.rows[index]
        prompt = row.get(cfg.prompt_column)
        if not isinstance(prompt, str) or not prompt:
            raise ValueError(
                f"prompt_column: row {index} of {cfg.path()} has no text in "
                f"{cfg.prompt_column!r} ({prompt!r})"
            )
        # JSON-able, as the task state travels between actors and into trajectories (a
        # Parquet date or bytes value becomes its string form).
        reference = json.loads(
            json.dumps({c: row.get(c) for c in cfg.reference_columns}, default=str)
        )
        return {"row": index, "prompt": prompt, "reference": reference, "attempt": 0}

    def _observation(self, text: str) -> dict[str, Any]:
        obs: dict[str, Any] = {"text": text}
        if self.config.system_prompt:
            obs["system"] = self.config.system_prompt
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A seeded draw of a row, or options["row"] (an index into the split's file)."""
        super().reset(seed=seed)
        options = options or {}
        if "row" in options:
            index = int(options["row"])
        else:
            index = int(self.np_random.integers(len(self.rows)))
        self._state = self._row_state(index)
        self.done = False
        return self._observation(self._state["prompt"]), {"task_state": dict(self._state)}

    def task_state(self) -> dict[str, Any]:
        if self._state is None:
            raise RuntimeError("call reset() before task_state()")
        return dict(self._state)

    def expert_answer(self) -> str:
        """The row's sft_column value (the SFT examples' answer)."""
        cfg = self.config
        if cfg.sft_column is None or self._state is None:
            raise RuntimeError("expert_answer() needs sft_column and a reset()")
        return str(self.rows[self._state["row"]][cfg.sft_column])

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self._state is None or self.done:
            raise RuntimeError("step() needs a running episode; call reset()")
        if self._verifier is None:
            self._verifier = DatasetVerifier(self.config)
        return self.apply_verdict(verify_total(self._verifier, self.task_state(), action))

    def apply_verdict(
        self, verdict: Verdict | dict[str, Any]
    ) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Advance the episode with a verdict computed elsewhere (a verifier actor)."""
        if self._state is None or self.done:
            raise RuntimeError("apply_verdict() needs a running episode; call reset()")
        if isinstance(verdict, dict):
            verdict = Verdict(**verdict)
        self._state["attempt"] += 1
        cfg = self.config
        terminated = verdict.success
        truncated = not terminated and self._state["attempt"] >= cfg.max_turns
        reward = verdict.reward + (cfg.budget_penalty if truncated else 0.0)
        self.done = terminated or truncated
        info = {
            "task_state": dict(self._state),
            "verdict": verdict.to_dict(),
            "attempt": self._state["attempt"],
        }
        return self._observation(verdict.feedback), float(reward), terminated, truncated, info

    def close(self) -> None:
        if self._verifier is not None:
            self._verifier.close()
