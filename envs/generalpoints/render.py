"""Card table images (GP-VL observations): the Pillow-drawn deck, or the user's card images.

`render_hand(cards, size, card_images)` with a deck folder draws that folder's card images as
the study lays them out (envs.generalpoints.card_images). Without one, the default below: a
square green table with the hand's cards side by side. Each card is a white rounded
rectangle with its rank and a small suit at the top-left, the same index rotated at the
bottom-right, and one large suit in the middle. Suit shapes are drawn as polygons and
ellipses (fonts are not trusted to have suit glyphs); ranks use Pillow's bundled default font.
Rendering is a pure function of (cards, size): the same hand always gives the same pixels.
Card faces are drawn at 2x and downsampled (anti-aliasing), and cached per card and size.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from envs.generalpoints.card_images import load_deck, render_deck_table
from verifier.generalpoints_rules import Card

TABLE_GREEN = (24, 104, 56)
CARD_WHITE = (250, 250, 246)
CARD_BORDER = (60, 60, 60)
RED = (204, 24, 36)
BLACK = (20, 20, 20)
_SUPERSAMPLE = 2
_CARD_ASPECT = 1.4  # height / width of a poker card


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _draw_suit(
    draw: ImageDraw.ImageDraw,
    suit: str,
    cx: float,
    cy: float,
    s: float,
    color: tuple[int, int, int],
) -> None:
    """A suit symbol of height ~s centred at (cx, cy)."""

    def circle(x: float, y: float, r: float) -> None:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=color)

    if suit == "diamonds":
        draw.polygon(
            [(cx, cy - s / 2), (cx + s * 0.38, cy), (cx, cy + s / 2), (cx - s * 0.38, cy)],
            fill=color,
        )
    elif suit == "hearts":
        r = s * 0.26
        circle(cx - s * 0.22, cy - s * 0.18, r)
        circle(cx + s * 0.22, cy - s * 0.18, r)
        draw.polygon(
            [(cx - s * 0.47, cy - s * 0.1), (cx + s * 0.47, cy - s * 0.1), (cx, cy + s * 0.48)],
            fill=color,
        )
    elif suit == "spades":
        r = s * 0.24
        circle(cx - s * 0.21, cy + s * 0.08, r)
        circle(cx + s * 0.21, cy + s * 0.08, r)
        draw.polygon(
            [(cx - s * 0.44, cy + s * 0.02), (cx + s * 0.44, cy + s * 0.02), (cx, cy - s * 0.5)],
            fill=color,
        )
        draw.polygon(
            [(cx, cy + s * 0.05), (cx - s * 0.17, cy + s * 0.5), (cx + s * 0.17, cy + s * 0.5)],
            fill=color,
        )
    else:  # clubs
        r = s * 0.2
        circle(cx, cy - s * 0.25, r)
        circle(cx - s * 0.24, cy + s * 0.08, r)
        circle(cx + s * 0.24, cy + s * 0.08, r)
        circle(cx, cy, r * 0.7)
        draw.polygon(
            [(cx, cy), (cx - s * 0.17, cy + s * 0.5), (cx + s * 0.17, cy + s * 0.5)], fill=color
        )


def _draw_index(card: Card, width: int, color: tuple[int, int, int]) -> Image.Image:
    """Rank above a small suit, on a transparent tile (pasted twice, once rotated)."""
    font_size = max(8, int(width * 0.3))
    font = _font(font_size)
    tile_w, tile_h = int(width * 0.42), int(width * 0.62)
    tile = Image.new("RGBA", (tile_w, tile_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(tile)
    left, top, right, bottom = draw.textbbox((0, 0), card.rank, font=font)
    text_w = right - left
    # "10" is wider than the tile at full size; squeeze it by drawing with a smaller font.
    if text_w > tile_w:
        font = _font(max(8, int(font_size * tile_w / text_w)))
        left, top, right, bottom = draw.textbbox((0, 0), card.rank, font=font)
        text_w = right - left
    draw.text(
        ((tile_w - text_w) / 2 - left, -top + tile_h * 0.02),
        card.rank,
        font=font,
        fill=color,
        stroke_width=max(1, font_size // 14),
        stroke_fill=color,
    )
    suit_s = width * 0.2
    _draw_suit(
        draw, card.suit, tile_w / 2, (bottom - top) + tile_h * 0.08 + suit_s / 2, suit_s, color
    )
    return tile


@lru_cache(maxsize=256)
def card_face(card: Card, width: int, height: int) -> Image.Image:
    """One card face as an RGBA image of (width, height), background transparent."""
    w, h = width * _SUPERSAMPLE, height * _SUPERSAMPLE
    color = RED if card.is_red else BLACK
    face = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(face)
    draw.rounded_rectangle(
        (0, 0, w - 1, h - 1),
        radius=int(w * 0.08),
        fill=CARD_WHITE,
        outline=CARD_BORDER,
        width=max(1, w // 60),
    )
    index = _draw_index(card, w, color)
    pad = int(w * 0.04)
    face.alpha_composite(index, (pad, pad))
    face.alpha_composite(index.rotate(180), (w - index.width - pad, h - index.height - pad))
    _draw_suit(draw, card.suit, w / 2, h / 2, w * 0.42, color)
    return face.resize((width, height), Image.Resampling.LANCZOS)


def render_table(cards: Sequence[Card], size: int = 336) -> Image.Image:
    """The square table image (RGB) with the cards side by side, left to right."""
    n = len(cards)
    margin, gap = size * 0.04, size * 0.03
    card_w = int((size - 2 * margin - (n - 1) * gap) / n)
    card_h = min(int(card_w * _CARD_ASPECT), int(size - 2 * margin))
    table = Image.new("RGBA", (size, size), (*TABLE_GREEN, 255))
    row_w = n * card_w + (n - 1) * gap
    x0, y0 = (size - row_w) / 2, (size - card_h) / 2
    for i, card in enumerate(cards):
        table.alpha_composite(
            card_face(card, card_w, card_h), (round(x0 + i * (card_w + gap)), round(y0))
        )
    return table.convert("RGB")


def render_hand(
    cards: Sequence[Card], size: int = 336, card_images: str | None = None
) -> np.ndarray:
    """The table image as a uint8 array of shape (size, size, 3).

    `card_images`: a deck folder (GeneralPointsConfig.card_images), or None for the
    Pillow-drawn deck."""
    if card_images is not None:
        image = render_deck_table(cards, size, load_deck(card_images))
    else:
        image = render_table(cards, size)
    return np.asarray(image, dtype=np.uint8)
