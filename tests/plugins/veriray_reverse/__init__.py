"""A task plugin as a separate distribution would ship it: reverse a word.

Its distribution declares the entry point (entry_points.txt of its dist-info, or in its
pyproject.toml)::

    [project.entry-points."veriray.tasks"]
    reverse = "veriray_reverse:FAMILY"

and then ``task.family: reverse`` with a ``task.reverse`` section works in any veriray
config, without touching veriray.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.families import SFTRequest, TaskFamily
from envs.sft_rows import sft_row, user_message
from verifier.base import Verdict, verify_total

LETTERS = "abcdefghij"


@dataclass
class ReverseConfig:
    """The reverse task's parameters (the section task.reverse)."""

    min_len: int = 3
    """Shortest word."""
    max_len: int = 4
    """Longest word (the OOD suite plays words two letters longer)."""
    tries: int = 2
    """Answers per word (the verification budget)."""
    split: str = "train"
    """train or eval (set by veriray per stage)."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_len <= self.max_len:
            raise ValueError(f"min_len: must be in [1, max_len={self.max_len}]")
        if self.tries < 1:
            raise ValueError(f"tries: must be >= 1, got {self.tries}")


class ReverseVerifier:
    """Pure: the answer's first line must be the word reversed."""

    def verify(self, task_state: dict[str, Any], response_text: str) -> Verdict:
        lines = response_text.strip().splitlines()
        ok = bool(lines) and lines[0].strip() == task_state["word"][::-1]
        feedback = "" if ok else "That is not the word reversed. Try again."
        return Verdict(1.0 if ok else 0.0, ok, feedback)


class ReverseEnv(gym.Env):
    """veriray's episode protocol: reset -> ({"text"}, {"task_state"}); apply_verdict."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = ReverseConfig(**config)
        text = spaces.Text(256, min_length=0, charset=frozenset(string.printable))
        self.observation_space, self.action_space = spaces.Dict({"text": text}), text
        self.state: dict[str, Any] = {}
        self.tries_used = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options and "task_state" in options:
            self.state = dict(options["task_state"])
        else:
            n = int(self.np_random.integers(self.config.min_len, self.config.max_len + 1))
            self.state = {"word": "".join(self.np_random.choice(list(LETTERS), n))}
        self.tries_used = 0
        return {"text": f"Write {self.state['word']} backwards."}, {"task_state": self.state}

    def step(self, action: str):
        return self.apply_verdict(verify_total(ReverseVerifier(), self.state, action))

    def apply_verdict(self, verdict: Verdict | dict[str, Any]):
        verdict = Verdict(**verdict) if isinstance(verdict, dict) else verdict
        self.tries_used += 1
        truncated = not verdict.success and self.tries_used >= self.config.tries
        info = {"task_state": self.state, "verdict": verdict.to_dict()}
        return {"text": verdict.feedback}, verdict.reward, verdict.success, truncated, info


def suites(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    longer = {"min_len": config["max_len"] + 1, "max_len": config["max_len"] + 2}
    return {
        "in_distribution": config | {"split": "eval"},
        "ood_longer": config | {"split": "eval"} | longer,
    }


def eval_reset_options(config: dict[str, Any], limit: int | None, seed: int) -> list[dict]:
    rng = np.random.default_rng([seed, config["min_len"], config["max_len"]])
    words: list[str] = []
    while len(words) < (limit or 8):
        n = int(rng.integers(config["min_len"], config["max_len"] + 1))
        word = "".join(rng.choice(list(LETTERS), n))
        if word not in words:
            words.append(word)
    return [{"task_state": {"word": w}} for w in words]


def sft_examples(request: SFTRequest):
    env = ReverseEnv(request.config)
    for i in range(request.n):
        obs, info = env.reset(seed=request.seed + i)
        answer = {"role": "assistant", "content": info["task_state"]["word"][::-1]}
        messages = [user_message(obs["text"], False), answer]
        yield sft_row(messages, None, "reverse", request.config, info["task_state"])


FAMILY = TaskFamily(
    name="reverse",
    config_cls=ReverseConfig,
    make_env=ReverseEnv,
    make_verifier=lambda config: ReverseVerifier(),
    suites=suites,
    eval_reset_options=eval_reset_options,
    budget_field="tries",
    sft_examples=sft_examples,
    description="reverse a word (a plugin installed through an entry point)",
)
