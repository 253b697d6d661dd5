"""Card table rendering: deterministic, colour-correct, distinct per hand."""

import numpy as np

from envs.generalpoints.render import TABLE_GREEN, card_face, render_hand
from verifier.generalpoints_rules import Card

BLACK_HAND = [Card("K", "spades"), Card("10", "clubs"), Card("A", "spades"), Card("7", "clubs")]
RED_HAND = [Card("K", "hearts"), Card("10", "diamonds"), Card("A", "hearts"), Card("7", "hearts")]


def _reddish(img: np.ndarray) -> int:
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return int(((r > 150) & (g < 90) & (b < 90)).sum())


def test_render_is_deterministic_and_uncached_equal():
    first = render_hand(BLACK_HAND)
    card_face.cache_clear()
    second = render_hand(BLACK_HAND)
    assert first.shape == (336, 336, 3) and first.dtype == np.uint8
    assert np.array_equal(first, second)


def test_table_is_green_and_cards_are_white():
    img = render_hand(BLACK_HAND)
    assert tuple(img[2, 2]) == TABLE_GREEN
    assert (img > 240).all(axis=-1).sum() > 10000  # four white card faces


def test_suit_colours():
    assert _reddish(render_hand(BLACK_HAND)) == 0
    assert _reddish(render_hand(RED_HAND)) > 500


def test_different_hands_and_orders_differ():
    img = render_hand(BLACK_HAND)
    assert not np.array_equal(img, render_hand(BLACK_HAND[::-1]))
    changed = [Card("Q", "spades"), *BLACK_HAND[1:]]
    assert not np.array_equal(img, render_hand(changed))
    # The difference is confined to the first card's slot (left quarter).
    diff = np.argwhere((img != render_hand(changed)).any(axis=-1))
    assert diff[:, 1].max() < 336 // 4 + 10


def test_other_sizes_and_card_counts():
    five = [*BLACK_HAND, RED_HAND[0]]
    for n in (2, 3, 5):
        img = render_hand(five[:n], 200)
        assert img.shape == (200, 200, 3)
        assert tuple(img[1, 1]) == TABLE_GREEN
