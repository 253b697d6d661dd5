"""The V-IRL rules the verifier scores with: the two action spaces, the reward table, scoring.

These live in verifier/ (not envs/) because imports run along the data flow: the env builds its
config and prompts from them, the verifier scores against them, and verifier/ imports nothing
from envs/. Standard library only, so configs load anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

ABSOLUTE_DIRECTIONS: tuple[str, ...] = (
    "north",
    "northeast",
    "east",
    "southeast",
    "south",
    "southwest",
    "west",
    "northwest",
)
"""turn_direction(...) arguments of the absolute action space (the training rule)."""
RELATIVE_DIRECTIONS: tuple[str, ...] = ("left", "right", "slightly left", "slightly right")
"""turn_direction(...) arguments of the relative action space (the OOD rule)."""

SCORINGS: tuple[str, ...] = ("study", "strict")
DEFAULT_MAX_RESPONSE_CHARS = 8000
"""Responses are cut to this many characters before parsing (the verifier and its helpers)."""


@dataclass(frozen=True)
class VirlRewards:
    """The reward table (the study's values). Penalties never stack: one value per turn."""

    correct: float = 1.0
    """The right action (under scoring 'strict' also the right observation): the agent
    advances to the next point."""
    wrong_action: float = -1.0
    """The action is wrong or outside the action space, or no answer was found."""
    wrong_observation: float = -1.5
    """Scoring 'strict' only: the reported observation does not name exactly the landmark(s)
    visible at this point."""
    budget_exceeded: float = -1.5
    """The last allowed try at a point failed (the budget is spent): the route fails with this
    reward."""


class VirlRules(Protocol):
    """What the verifier reads from a task variant (envs' VirlConfig has these)."""

    @property
    def scoring(self) -> str: ...

    @property
    def rewards(self) -> VirlRewards: ...

    @property
    def max_response_chars(self) -> int: ...


@dataclass(frozen=True)
class VirlScoring:
    """The part of a V-IRL variant that decides a verdict."""

    scoring: str = "study"
    """'study': a try succeeds when its action is right; 'strict': the observation must also
    name exactly the landmarks in view (see verifier.virl)."""
    rewards: VirlRewards = field(default_factory=VirlRewards)
    """Reward table (a dict is accepted and converted)."""
    max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS
    """Responses are cut to this many characters before parsing (bounded verifier cost)."""

    def __post_init__(self) -> None:
        if isinstance(self.rewards, Mapping):
            object.__setattr__(self, "rewards", VirlRewards(**self.rewards))
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring: {self.scoring!r} is not one of {list(SCORINGS)}")
        chars = self.max_response_chars
        if isinstance(chars, bool) or not isinstance(chars, int) or chars < 1:
            raise ValueError(f"max_response_chars: {chars!r} must be a positive integer")

    @classmethod
    def coerce(cls, config: VirlRules | Mapping[str, Any] | None) -> VirlScoring:
        """None (defaults), a dict of these fields, or any variant with them (a VirlConfig):
        the verifier takes only what decides a verdict."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(config) - known)
            if unknown:
                raise ValueError(f"{unknown[0]}: unknown VirlScoring field; known: {sorted(known)}")
            return cls(**config)
        if all(hasattr(config, name) for name in ("scoring", "rewards", "max_response_chars")):
            return cls(config.scoring, config.rewards, config.max_response_chars)
        raise TypeError(
            f"config: expected a V-IRL config, dict or None, got {type(config).__name__}"
        )
