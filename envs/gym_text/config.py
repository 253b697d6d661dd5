"""Typed config of the gymnasium adapter (``task.gymnasium``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EVAL_SEED_BASE = 1_000_000_000
"""Evaluation episodes reset the env with seeds from here up: far from the seeds training
draws in practice, and the same at every evaluation point (paired comparisons)."""


@dataclass
class GymTextConfig:
    """A gymnasium env whose observation and action spaces are gymnasium.spaces.Text."""

    env_id: str = ""
    """The registered gymnasium id, e.g. "mypkg/Wordle-v0", or "module:Id" to import the
    module (which registers the id) first, as gymnasium.make accepts."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for gymnasium.make (the training distribution)."""
    eval_suites: dict[str, dict[str, Any]] = field(default_factory=lambda: {"in_distribution": {}})
    """Evaluation suites: suite name -> env_kwargs overrides (e.g. {in_distribution: {},
    ood_long: {length: 8}}). Each plays eval_episodes seeded episodes."""
    eval_episodes: int = 32
    """Episodes per evaluation suite (seeds EVAL_SEED_BASE, EVAL_SEED_BASE + 1, ...)."""
    max_turns: int = 16
    """Turns per episode at most (truncated after; the env may end it sooner)."""
    success_key: str = "is_success"
    """The info key holding the env's success flag. When the env does not set it, an
    episode succeeds when it terminates (not truncated) on a positive reward."""

    def __post_init__(self) -> None:
        if not self.env_id:
            raise ValueError('env_id: required, e.g. "mypkg/Wordle-v0" or "mypkg.envs:Wordle-v0"')
        if not self.eval_suites:
            raise ValueError("eval_suites: name at least one suite, e.g. {in_distribution: {}}")
        for name, kwargs in self.eval_suites.items():
            if not name.isidentifier():
                raise ValueError(f"eval_suites: suite name {name!r} is not an identifier")
            if not isinstance(kwargs, dict):
                raise ValueError(f"eval_suites.{name}: expected a mapping of env_kwargs")
        if self.eval_episodes < 1:
            raise ValueError(f"eval_episodes: must be >= 1, got {self.eval_episodes}")
        if self.max_turns < 1:
            raise ValueError(f"max_turns: must be >= 1, got {self.max_turns}")
