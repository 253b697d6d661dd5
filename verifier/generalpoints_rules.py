"""The GeneralPoints rules the verifier checks: cards, face-card rules, the task state, rewards.

A hand is a tuple of `Card(rank, suit)`. What a card *counts as* depends on the active
face-card rule, so the rule travels with the task state: a task state alone is enough to
verify an answer.

These live in verifier/ (not envs/) because imports run along the data flow: the env deals
and renders these cards and builds its config from these types, the verifier scores against
them, and verifier/ imports nothing from envs/. Standard library only, so configs load anywhere.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

FACE_CARD_RULES = ("ten", "ordinal")
OBSERVATION_MODES = ("text", "image")
RANKS = ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")
FACE_RANKS = frozenset({"J", "Q", "K"})
BLACK_SUITS = ("spades", "clubs")
RED_SUITS = ("hearts", "diamonds")
SUITS = BLACK_SUITS + RED_SUITS
SUITS_BY_COLOR = {"black": BLACK_SUITS, "red": RED_SUITS, "mixed": SUITS}

_ORDINAL = {rank: i + 1 for i, rank in enumerate(RANKS)}

# Spellings a model may use for a rank in the "cards" field. Digits "1" and "11".."13" are
# accepted for A/J/Q/K because they are unambiguous; "10" always means the rank 10.
_RANK_ALIASES = {
    **{rank.lower(): rank for rank in RANKS},
    "1": "A",
    "ace": "A",
    "11": "J",
    "jack": "J",
    "12": "Q",
    "queen": "Q",
    "13": "K",
    "king": "K",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
# Suit words/symbols stripped before reading a rank ("K of spades", "Q♥", "10 hearts").
_SUIT_NOISE = re.compile(
    r"\b(of|spades?|hearts?|clubs?|diamonds?)\b|[\u2660-\u2667]|\ufe0f", re.IGNORECASE
)


def rank_value(rank: str, rule: str) -> int:
    """The number a rank counts as: A=1, 2-10 face value, J/Q/K 10 ("ten") or 11-13."""
    if rank not in _ORDINAL:
        raise ValueError(f"rank: {rank!r} is not one of {list(RANKS)}")
    if rule not in FACE_CARD_RULES:
        raise ValueError(f"face_card_rule: {rule!r} is not one of {list(FACE_CARD_RULES)}")
    value = _ORDINAL[rank]
    return min(value, 10) if rule == "ten" else value


def parse_rank(token: object) -> str | None:
    """Canonical rank for a model's spelling of a card (e.g. 'k', 'King of Spades', 13), or None."""
    if isinstance(token, bool):
        return None
    if isinstance(token, float):
        # inf and nan have no int(); no finite non-whole float names a card either.
        if not math.isfinite(token) or not token.is_integer():
            return None
        token = int(token)
    if isinstance(token, int):
        if not 0 < token < 100:  # str() of a huge int is slow, and no card is numbered so
            return None
        token = str(token)
    if not isinstance(token, str) or len(token) > 40:
        return None
    cleaned = _SUIT_NOISE.sub(" ", token).strip().strip("'\"").strip().lower()
    return _RANK_ALIASES.get(cleaned)


@dataclass(frozen=True)
class Card:
    """One playing card."""

    rank: str
    """One of RANKS."""
    suit: str
    """One of SUITS."""

    def __post_init__(self) -> None:
        if self.rank not in _ORDINAL:
            raise ValueError(f"rank: {self.rank!r} is not one of {list(RANKS)}")
        if self.suit not in SUITS:
            raise ValueError(f"suit: {self.suit!r} is not one of {list(SUITS)}")

    @property
    def is_red(self) -> bool:
        return self.suit in RED_SUITS

    def to_dict(self) -> dict[str, str]:
        return {"rank": self.rank, "suit": self.suit}


@dataclass(frozen=True)
class GeneralPointsTask:
    """The task state of one episode: the hand, the target and the rule that gives numbers."""

    cards: tuple[Card, ...]
    """The hand, in the order shown to the model."""
    target: int
    """The value the formula must reach."""
    face_card_rule: str
    """ "ten" or "ordinal"; decides what J, Q and K count as."""

    def __post_init__(self) -> None:
        if not self.cards:
            raise ValueError("cards: a hand needs at least one card")
        if self.face_card_rule not in FACE_CARD_RULES:
            raise ValueError(
                f"face_card_rule: {self.face_card_rule!r} is not one of {list(FACE_CARD_RULES)}"
            )

    @property
    def ranks(self) -> tuple[str, ...]:
        return tuple(card.rank for card in self.cards)

    @property
    def numbers(self) -> tuple[int, ...]:
        """Each card's number under the task's rule, in card order."""
        return tuple(rank_value(card.rank, self.face_card_rule) for card in self.cards)

    @property
    def has_face_card(self) -> bool:
        return any(card.rank in FACE_RANKS for card in self.cards)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; "numbers" is derived and only there for readers (ignored on load)."""
        return {
            "cards": [card.to_dict() for card in self.cards],
            "target": self.target,
            "face_card_rule": self.face_card_rule,
            "numbers": list(self.numbers),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneralPointsTask:
        cards = tuple(Card(rank=str(c["rank"]), suit=str(c["suit"])) for c in data["cards"])
        return cls(cards=cards, target=int(data["target"]), face_card_rule=data["face_card_rule"])

    @classmethod
    def coerce(cls, state: GeneralPointsTask | dict[str, Any]) -> GeneralPointsTask:
        if isinstance(state, cls):
            return state
        if isinstance(state, dict):
            return cls.from_dict(state)
        raise TypeError(f"expected GeneralPointsTask or dict, got {type(state).__name__}")


def make_task(
    ranks: Iterable[str], target: int = 24, face_card_rule: str = "ten", suit: str = "spades"
) -> GeneralPointsTask:
    """Convenience for tests and scripts: a task from ranks, all of one suit."""
    return GeneralPointsTask(tuple(Card(r, suit) for r in ranks), target, face_card_rule)


@dataclass(frozen=True)
class RewardTable:
    """Per-response rewards; defaults are the paper's GeneralPoints table."""

    correct: float = 5.0
    """A legal formula that uses every card number once and equals the target."""
    wrong_value: float = -1.0
    """A legal formula with the right numbers whose value is not the target."""
    wrong_numbers: float = -2.0
    """The formula does not use each card's number exactly once (the "number" field never
    decides success or reward: it feeds the translation metric and the feedback)."""
    illegal_formula: float = -3.0
    """No parsable answer, or a formula that is not + - * / over integers (or divides by 0)."""
    wrong_cards: float = -1.5
    """Image mode: the "cards" field does not name the ranks shown."""
    budget_exceeded: float = -1.0
    """Added to the last turn's reward when all `viter` attempts failed (episode-level event)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(value):
                raise ValueError(f"rewards.{f.name}: {value!r} is not a finite number")

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardTable:
        reject_unknown("rewards", cls, data)
        return cls(**data)


def reject_unknown(prefix: str, cls: type, data: Mapping[str, Any]) -> None:
    """A config read from plain data names every key it does not know (typos never pass)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{prefix}: unknown field(s) {unknown}; allowed: {sorted(known)}")


class GeneralPointsRules(Protocol):
    """What the verifier reads from a task variant (envs' GeneralPointsConfig has these)."""

    @property
    def rewards(self) -> RewardTable: ...

    @property
    def observation_mode(self) -> str: ...


@dataclass(frozen=True)
class GeneralPointsScoring:
    """The part of a GeneralPoints variant that decides a verdict: rewards and whether the
    answer's "cards" field is checked (image mode)."""

    rewards: RewardTable = field(default_factory=RewardTable)
    """Reward table; see RewardTable."""
    observation_mode: str = "text"
    """ "image": the answer's "cards" field must name the ranks shown (recognition)."""

    def __post_init__(self) -> None:
        if not isinstance(self.rewards, RewardTable):
            raise ValueError(f"rewards: {self.rewards!r} is not a RewardTable")
        if self.observation_mode not in OBSERVATION_MODES:
            raise ValueError(
                f"observation_mode: {self.observation_mode!r} is not one of "
                f"{list(OBSERVATION_MODES)}"
            )

    @classmethod
    def coerce(cls, config: GeneralPointsRules | Mapping[str, Any] | None) -> GeneralPointsScoring:
        """None (defaults), a dict of these fields, or any variant with them (a
        GeneralPointsConfig): the verifier takes only what decides a verdict."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            reject_unknown("GeneralPointsScoring", cls, config)
            data = dict(config)
            if isinstance(data.get("rewards"), Mapping):
                data["rewards"] = RewardTable.from_dict(dict(data["rewards"]))
            return cls(**data)
        if hasattr(config, "rewards") and hasattr(config, "observation_mode"):
            return cls(rewards=config.rewards, observation_mode=config.observation_mode)
        raise TypeError(
            f"expected a GeneralPoints config, a dict or None, got {type(config).__name__}"
        )
