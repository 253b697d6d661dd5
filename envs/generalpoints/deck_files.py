"""A card-image deck on disk in the study's naming, and the check run when a config loads.

The study keeps one PNG per card named ``<suit><rank>.png``: suit in C D H S, rank in
A 2-9 T J Q K (T is the 10), e.g. ``SA.png``, ``HT.png``. This module only knows those names
and checks that a folder holds all 52 of them, readable; decoding the images (Pillow) happens
in envs.generalpoints.card_images when an env is built.

Standard library only: GeneralPointsConfig imports it, and configs must load anywhere.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

# The study's file-name letters, spelled out here; a unit test checks that they cover exactly
# verifier.generalpoints_rules.RANKS and SUITS.
SUIT_LETTERS: dict[str, str] = {"clubs": "C", "diamonds": "D", "hearts": "H", "spades": "S"}
RANK_LETTERS: dict[str, str] = {
    "A": "A",
    "2": "2",
    "3": "3",
    "4": "4",
    "5": "5",
    "6": "6",
    "7": "7",
    "8": "8",
    "9": "9",
    "10": "T",
    "J": "J",
    "Q": "Q",
    "K": "K",
}


def card_file_name(rank: str, suit: str) -> str:
    """The study's file name of one card: ("10", "hearts") -> "HT.png"."""
    return f"{SUIT_LETTERS[suit]}{RANK_LETTERS[rank]}.png"


DECK_FILE_NAMES: tuple[str, ...] = tuple(
    card_file_name(rank, suit) for suit in SUIT_LETTERS for rank in RANK_LETTERS
)


def deck_folder(path: str) -> Path:
    """The folder a `card_images` value names (``~`` expanded; relative to the working dir)."""
    return Path(path).expanduser()


def check_deck_folder(path: str, field: str = "card_images") -> None:
    """Raise ValueError naming `field` and the first missing, empty or unreadable file.

    A stat and a one-byte read per file; whether each file decodes as an image is checked when
    an env loads the deck. A folder that passed is not checked again in this process: configs
    are rebuilt for every episode, 104 file-system calls each add up on shared storage, and the
    env keeps the deck it read in memory anyway (so a later change would not reach it)."""
    _check_once(os.path.abspath(deck_folder(path)), path, field)


@lru_cache(maxsize=16)
def _check_once(absolute: str, path: str, field: str) -> None:
    # Keyed on the absolute path (a relative one means another folder after a chdir); only
    # successes are cached, so a fixed folder passes on the next try.
    folder = Path(absolute)
    if not folder.is_dir():
        raise ValueError(f"{field}: {path!r} is not a folder (expected 52 <suit><rank>.png files)")
    missing = [name for name in DECK_FILE_NAMES if not (folder / name).is_file()]
    if missing:
        shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
        raise ValueError(
            f"{field}: {folder / missing[0]} is missing ({len(missing)} of the 52 card files "
            f"are missing: {shown}; names are <suit><rank>.png, suit in C D H S, rank in "
            "A 2-9 T J Q K)"
        )
    for name in DECK_FILE_NAMES:
        file = folder / name
        try:
            with file.open("rb") as handle:
                empty = handle.read(1) == b""
        except OSError as err:
            raise ValueError(f"{field}: {file} cannot be read ({err.strerror or err})") from err
        if empty:
            raise ValueError(f"{field}: {file} is empty, not a card image")
