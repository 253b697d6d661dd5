"""Hands drawn from a folder of card images, laid out as the study lays them out.

The study's table (its gym env's observation): a square dark-green canvas (#35654d); each card
resized to width int(side / n * 0.9) and height int(width * 7 / 5); card i at
x = i * width * 1.1 (a 10% gap), vertically centred. Two deliberate differences: the row is
centred horizontally (the study starts it 5 px from the left edge and leaves the rest of the
slack on the right), and transparent card pixels (rounded corners) show the table, where the
study's paste without a mask drops the alpha channel.

A deck is read once per process and folder (`load_deck`): every file is decoded there, so a
broken image fails when the env is built, not mid-run. Only the compressed PNG bytes are kept
(the study's 52 cards of 750 x 1050 would take ~160 MB decoded); faces are decoded and resized
on first use, per size, and cached.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

from PIL import Image

from envs.generalpoints.deck_files import (
    DECK_FILE_NAMES,
    card_file_name,
    check_deck_folder,
    deck_folder,
)
from verifier.generalpoints_rules import Card

STUDY_TABLE_GREEN = (0x35, 0x65, 0x4D)
CARD_WIDTH_SHARE = 0.9
"""All cards together take this share of the side before spacing (the study's 0.9)."""
CARD_ASPECT = (7, 5)
"""Height : width of a resized card (the study's 5:7 poker card)."""
GAP_TENTHS = 1
"""Gap between cards in tenths of a card width (the study's 1.1 x width step)."""


@dataclass(frozen=True, eq=False)
class CardDeck:
    """The 52 card images of one folder, as PNG bytes keyed by the study's file name.

    Compared and hashed by identity: `load_deck` returns one object per folder, and the face
    cache keys on it without hashing megabytes of bytes."""

    folder: str
    """The folder the files were read from (for error messages and logs)."""
    files: Mapping[str, bytes]
    """File name ("SA.png") -> the file's bytes, all 52 present and decodable."""

    def png(self, card: Card) -> bytes:
        return self.files[card_file_name(card.rank, card.suit)]


def _decode(data: bytes, where: str) -> Image.Image:
    """The image in `data` as RGBA, or ValueError naming `where` (the field and the file)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.convert("RGBA")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        # Pillow reports a corrupt file as any of these, depending on where decoding stops.
        raise ValueError(f"card_images: {where} is not a readable image ({err})") from err


def read_deck(path: str) -> CardDeck:
    """Read and decode all 52 files of a deck folder; ValueError naming the first bad one."""
    check_deck_folder(path, "card_images")
    folder = deck_folder(path)
    files: dict[str, bytes] = {}
    for name in DECK_FILE_NAMES:
        file = folder / name
        try:
            data = file.read_bytes()
        except OSError as err:
            raise ValueError(f"card_images: {file} cannot be read ({err.strerror or err})") from err
        _decode(data, str(file)).close()  # decodes or raises; the pixels are not kept
        files[name] = data
    return CardDeck(str(folder), MappingProxyType(files))


def load_deck(path: str) -> CardDeck:
    """`read_deck`, once per process and folder (every env of a worker shares the bytes)."""
    return _load_once(os.path.abspath(deck_folder(path)))


@lru_cache(maxsize=4)
def _load_once(absolute: str) -> CardDeck:
    # Keyed on the absolute path: a relative one names another folder after a chdir.
    return read_deck(absolute)


@lru_cache(maxsize=512)
def deck_face(deck: CardDeck, card: Card, width: int, height: int) -> Image.Image:
    """One card of `deck` resized to (width, height), RGBA. Callers must not modify it."""
    image = _decode(deck.png(card), f"{deck.folder}/{card_file_name(card.rank, card.suit)}")
    # Bicubic, as the study's resize (Pillow's default): same filter, same look.
    return image.resize((width, height), Image.Resampling.BICUBIC)


@dataclass(frozen=True)
class TableLayout:
    """Where n cards go on a square table of one side (pixels)."""

    card_width: int
    card_height: int
    xs: tuple[int, ...]
    """Left edge of each card, left to right."""
    y: int
    """Top edge of every card."""


def study_layout(n: int, size: int) -> TableLayout:
    """The study's card size and ~10% spacing, with the row centred on the table."""
    if n < 1:
        raise ValueError(f"cards: a hand needs at least one card, got {n}")
    width = max(1, int(size / n * CARD_WIDTH_SHARE))
    height = min(size, int(width * CARD_ASPECT[0] / CARD_ASPECT[1]))
    # Integer steps (the study's int(i * w * 1.1)) without float error at exact halves.
    offsets = [i * width * (10 + GAP_TENTHS) // 10 for i in range(n)]
    left = (size - (offsets[-1] + width)) // 2
    return TableLayout(width, height, tuple(left + x for x in offsets), (size - height) // 2)


def render_deck_table(cards: Sequence[Card], size: int, deck: CardDeck) -> Image.Image:
    """The square table image (RGB) with `deck`'s cards laid out by `study_layout`."""
    layout = study_layout(len(cards), size)
    table = Image.new("RGBA", (size, size), (*STUDY_TABLE_GREEN, 255))
    for card, x in zip(cards, layout.xs, strict=True):
        face = deck_face(deck, card, layout.card_width, layout.card_height)
        table.alpha_composite(face, (x, layout.y))
    return table.convert("RGB")
