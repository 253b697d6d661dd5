"""Cards, face-card rules and the GeneralPoints task state.

A hand is a tuple of `Card(rank, suit)`. What a card *counts as* depends on the active
face-card rule, so the rule travels with the task state: a task state alone is enough to
verify an answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from envs.generalpoints.config import FACE_CARD_RULES

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
