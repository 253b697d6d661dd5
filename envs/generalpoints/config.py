"""Typed configuration of the GeneralPoints task family.

One dataclass describes every variant the paper uses (text or image observation, the 10-rule
or the ordinal face-card rule, black or red suits) and the scaled-down ones a CPU demo needs
(2 cards, a per-hand target). Variants are values of this config, never subclasses.

This module imports only the standard library (and verifier.generalpoints_rules, which does
too) so it loads anywhere (no torch, ray, PIL).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

from envs.generalpoints.deck_files import check_deck_folder

# The rules the verifier scores with are defined beside it (verifier/ imports nothing from envs/).
from verifier.generalpoints_rules import (
    FACE_CARD_RULES,
    OBSERVATION_MODES,
    RewardTable,
    reject_unknown,
)

SUIT_COLORS = ("black", "red", "mixed")
SPLITS = ("train", "validation", "eval", "all")
TARGET_MODES = ("fixed", "one_op")

MIN_CARDS = 2
# Exact enumeration of all hands is cheap up to 4 cards; 5 cards costs a one-off ~30 s and a few
# hundred MB of memoized value sets, and 6 would not fit, so the family stops at 5.
MAX_CARDS = 5


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {list(allowed)}")


def _check_int(name: str, value: object, lo: int | None = None, hi: int | None = None) -> None:
    # bool is an int subclass; True as a card count is a config bug, not a 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not an integer")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name}: {value!r} is not in [{lo}, {hi}]")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not one of [True, False]")


REMOVED_FIELDS: dict[str, str] = {
    "stack_penalties": "it claimed the study's stacked penalties but did not reproduce them on "
    "the same inputs; delete the field (a failed answer gets its most severe penalty)",
}


@dataclass(frozen=True)
class GeneralPointsConfig:
    """Everything that defines one GeneralPoints variant (hands, rule, rendering, rewards).

    A failed answer gets the single most severe penalty among its failed checks (the study's
    code adds them up; this is an intended difference: an answer with more faults never
    scores above one with a subset of them)."""

    REMOVED_FIELDS: ClassVar[dict[str, str]] = REMOVED_FIELDS

    num_cards: int = 4
    """Cards per hand. The paper uses 4; the CPU-scale demo uses 2 with target_mode="one_op"."""
    target: int = 24
    """The value the formula must reach when target_mode is "fixed"."""
    target_mode: str = "fixed"
    """ "fixed": every hand targets `target` and only solvable hands are dealt. "one_op": each
    hand's target is the value of the cards combined by one random operation per step (+, -, *
    or an exact /, non-negative integer results), so every hand is solvable; `target` is unused.
    """
    face_card_rule: str = "ten"
    """ "ten": J, Q, K count as 10 (training rule). "ordinal": J=11, Q=12, K=13 (OOD rule)."""
    suit_color: str = "black"
    """Suits dealt: "black" (spades, clubs; training), "red" (hearts, diamonds; visual OOD),
    or "mixed" (all four)."""
    observation_mode: str = "text"
    """ "text": cards listed in the prompt (GP-L). "image": cards shown in an image (GP-VL), and
    the answer's "cards" field is checked (recognition)."""
    viter: int = 5
    """Verification budget: attempts per episode (the paper's VIter). 1 means single-turn."""
    rewards: RewardTable = field(default_factory=RewardTable)
    """Reward table; see RewardTable."""
    split: str = "train"
    """Which part of the hands to deal from: "train"; "validation" (held out from training and
    from every evaluation suite: tune learning rates and the warm start here); "eval" (held
    out for the in-distribution suite); or "all" (every eligible hand: a rule never trained,
    such as the OOD rule, needs no split)."""
    heldout_fraction: float = 0.2
    """Share of the distinct number multisets (see envs.generalpoints.deal) held out for eval."""
    validation_fraction: float = 0.15
    """Share of the distinct number multisets held out for validation (after eval's share)."""
    split_seed: int = 0
    """Seed of the train/eval split; the split is a pure function of it and the task fields."""
    ood_face_cards_only: bool = True
    """Under the "ordinal" rule, deal only hands with at least one J, Q or K (the paper's OOD
    protocol), so every OOD hand is one the rule change actually affects."""
    image_size: int = 336
    """Side of the square table image in pixels (image mode and rgb_array rendering)."""
    card_images: str | None = None
    """A folder of the study's 52 card PNGs, named <suit><rank>.png (suit C, D, H or S; rank A,
    2-9, T for 10, J, Q or K; e.g. SA.png, HT.png). When set, every image observation (all
    suit colours) shows these cards as the study lays them out: a dark-green table, cards
    resized to one size, ~10% apart, centred. None (default): the Pillow-drawn deck. A
    missing, empty or unreadable file is an error when the config loads; one that does not
    decode as an image is an error when the env is built."""
    max_response_chars: int = 8192
    """max_length of the gymnasium Text action space (the verifier reads the last 8,000)."""

    def __post_init__(self) -> None:
        _check_int("num_cards", self.num_cards, MIN_CARDS, MAX_CARDS)
        _check_int("target", self.target, -(10**6), 10**6)
        _check_choice("target_mode", self.target_mode, TARGET_MODES)
        _check_choice("face_card_rule", self.face_card_rule, FACE_CARD_RULES)
        _check_choice("suit_color", self.suit_color, SUIT_COLORS)
        _check_choice("observation_mode", self.observation_mode, OBSERVATION_MODES)
        _check_int("viter", self.viter, 1, 1000)
        if not isinstance(self.rewards, RewardTable):
            raise ValueError(f"rewards: {self.rewards!r} is not a RewardTable")
        _check_choice("split", self.split, SPLITS)
        frac = self.heldout_fraction
        if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 <= frac < 1:
            raise ValueError(f"heldout_fraction: {frac!r} is not a number in [0, 1)")
        if self.split == "eval" and frac == 0:
            raise ValueError("heldout_fraction: 0 leaves nothing to deal for split='eval'")
        vfrac = self.validation_fraction
        if isinstance(vfrac, bool) or not isinstance(vfrac, int | float) or not 0 <= vfrac < 1:
            raise ValueError(f"validation_fraction: {vfrac!r} is not a number in [0, 1)")
        if frac + vfrac >= 1:
            raise ValueError(
                f"validation_fraction: {vfrac} + heldout_fraction {frac} leaves nothing to train on"
            )
        if self.split == "validation" and vfrac == 0:
            raise ValueError("validation_fraction: 0 leaves nothing to deal for split='validation'")
        _check_int("split_seed", self.split_seed, 0, None)
        _check_bool("ood_face_cards_only", self.ood_face_cards_only)
        _check_int("image_size", self.image_size, 64, 2048)
        _check_int("max_response_chars", self.max_response_chars, 64, 1_000_000)
        self._check_card_images()  # last: the only check that touches the file system

    def _check_card_images(self) -> None:
        value = self.card_images
        if value is None:
            return
        if isinstance(value, os.PathLike):
            # A Path from Python callers; stored as str so the config stays plain data (YAML,
            # JSON, Ray). Frozen dataclass: set through object.
            value = os.fspath(value)
            object.__setattr__(self, "card_images", value)
        if not isinstance(value, str) or not value:
            raise ValueError(f"card_images: {value!r} is not a folder path")
        check_deck_folder(value, "card_images")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneralPointsConfig:
        """Build from a plain dict (e.g. parsed YAML); unknown keys are an error, not ignored."""
        for key in set(data) & set(REMOVED_FIELDS):
            raise ValueError(f"{key}: removed: {REMOVED_FIELDS[key]}")
        reject_unknown("GeneralPointsConfig", cls, data)
        data = dict(data)
        if isinstance(data.get("rewards"), dict):
            data["rewards"] = RewardTable.from_dict(data["rewards"])
        return cls(**data)

    @classmethod
    def coerce(cls, config: GeneralPointsConfig | dict[str, Any] | None) -> GeneralPointsConfig:
        """Accept a config, a dict of its fields, or None (defaults)."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, dict):
            return cls.from_dict(config)
        raise TypeError(f"expected GeneralPointsConfig, dict or None, got {type(config).__name__}")
