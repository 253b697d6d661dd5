"""A user's card-image deck (`card_images`): file names, load-time errors, the study's layout.

Each test deck is 52 small solid-colour PNGs, one colour per card, so a pixel tells which
file was drawn where.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from envs.families import family
from envs.generalpoints.card_images import STUDY_TABLE_GREEN, study_layout
from envs.generalpoints.config import GeneralPointsConfig
from envs.generalpoints.deck_files import DECK_FILE_NAMES, RANK_LETTERS, SUIT_LETTERS
from envs.generalpoints.env import GeneralPointsEnv
from envs.generalpoints.render import TABLE_GREEN, render_hand
from verifier.generalpoints_rules import RANKS, SUITS, Card

CARD_PX = (15, 21)  # small, 5:7 like the study's 750 x 1050
ALL_CARDS = [Card(rank, suit) for suit in SUITS for rank in RANKS]


def _colour(name: str) -> tuple[int, int, int]:
    """A distinct colour per file, never the table's (blue 240 vs 77)."""
    i = DECK_FILE_NAMES.index(name)
    return (10 + 4 * i, 230 - 3 * i, 240)


def _file(card: Card) -> str:
    return f"{SUIT_LETTERS[card.suit]}{RANK_LETTERS[card.rank]}.png"


@pytest.fixture
def deck(tmp_path: Path) -> Path:
    folder = tmp_path / "cards"
    folder.mkdir()
    for name in DECK_FILE_NAMES:
        Image.new("RGB", CARD_PX, _colour(name)).save(folder / name)
    return folder


def _runs(row: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of non-table pixels along one row of the image."""
    card = (row != STUDY_TABLE_GREEN).any(axis=-1).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], card, [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def test_file_names_are_the_studys() -> None:
    assert set(RANK_LETTERS) == set(RANKS) and set(SUIT_LETTERS) == set(SUITS)
    assert len(set(DECK_FILE_NAMES)) == 52
    assert {"SA.png", "HT.png", "DK.png", "C2.png", "SQ.png", "HJ.png"} <= set(DECK_FILE_NAMES)


def test_the_default_is_the_pillow_deck() -> None:
    cfg = GeneralPointsConfig(observation_mode="image")
    assert cfg.card_images is None
    obs, _ = GeneralPointsEnv(cfg).reset(seed=0)
    assert tuple(obs["image"][1, 1]) == TABLE_GREEN


def test_layout_is_centred_with_ten_percent_gaps() -> None:
    layout = study_layout(4, 336)
    assert (layout.card_width, layout.card_height) == (75, 105)  # int(336 / 4 * 0.9), x 7/5
    assert layout.xs == (7, 89, 172, 254)
    assert layout.y == (336 - 105) // 2
    for n, size in [(2, 96), (3, 200), (4, 1200), (5, 336)]:
        lay = study_layout(n, size)
        left, right = lay.xs[0], size - lay.xs[-1] - lay.card_width
        assert abs(left - right) <= 1
        gaps = [b - a - lay.card_width for a, b in itertools.pairwise(lay.xs)]
        assert all(abs(g - 0.1 * lay.card_width) <= 1 for g in gaps)


@pytest.mark.parametrize(("n", "size"), [(4, 336), (2, 96), (5, 256)])
def test_rendered_hand_pixels(deck: Path, n: int, size: int) -> None:
    cards = [Card("A", "spades"), Card("10", "hearts"), Card("K", "diamonds"), Card("7", "clubs")]
    cards = [*cards, Card("Q", "spades")][:n]
    img = render_hand(cards, size, str(deck))
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    # Dark-green table all around the border.
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    assert (border == STUDY_TABLE_GREEN).all()
    lay = study_layout(n, size)
    # Each card's file, where the layout puts it (centre pixel exact: solid colour resized).
    for card, x in zip(cards, lay.xs, strict=True):
        centre = img[lay.y + lay.card_height // 2, x + lay.card_width // 2]
        assert tuple(centre) == _colour(_file(card))
    # Measured from the pixels: n cards of one width, ~10% gaps, centred both ways.
    runs = _runs(img[size // 2])
    assert len(runs) == n
    widths = {end - start for start, end in runs}
    assert max(widths) - min(widths) <= 1
    width = runs[0][1] - runs[0][0]
    assert abs(width - int(size / n * 0.9)) <= 1
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(runs)]
    assert all(abs(g - 0.1 * width) <= 1.5 for g in gaps)
    assert abs(runs[0][0] - (size - runs[-1][1])) <= 1
    rows = np.flatnonzero((img[:, runs[0][0] + width // 2] != STUDY_TABLE_GREEN).any(axis=-1))
    top, bottom = rows[0], size - 1 - rows[-1]
    assert abs(top - bottom) <= 1
    assert abs((rows[-1] - rows[0] + 1) - int(width * 7 / 5)) <= 1


def test_every_file_lands_on_its_card(deck: Path) -> None:
    lay = study_layout(4, 128)
    for i in range(0, 52, 4):
        hand = ALL_CARDS[i : i + 4]
        img = render_hand(hand, 128, str(deck))
        for card, x in zip(hand, lay.xs, strict=True):
            centre = img[lay.y + lay.card_height // 2, x + lay.card_width // 2]
            assert tuple(centre) == _colour(_file(card)), card


def test_transparent_card_pixels_show_the_table(tmp_path: Path, deck: Path) -> None:
    # A card with a transparent left half (like rounded corners): the table shows through.
    face = Image.new("RGBA", (40, 56), (*_colour("SA.png"), 255))
    face.paste((0, 0, 0, 0), (0, 0, 20, 56))
    face.save(deck / "SA.png")
    img = render_hand([Card("A", "spades"), Card("2", "spades")], 200, str(deck))
    lay = study_layout(2, 200)
    y = lay.y + lay.card_height // 2
    assert tuple(img[y, lay.xs[0] + 5]) == STUDY_TABLE_GREEN
    assert tuple(img[y, lay.xs[0] + lay.card_width - 5]) == _colour("SA.png")


@pytest.mark.parametrize("suit_color", ["black", "red", "mixed"])
def test_env_draws_the_deck_for_every_suit_colour(deck: Path, suit_color: str) -> None:
    cfg = GeneralPointsConfig(
        observation_mode="image", card_images=str(deck), suit_color=suit_color, image_size=128
    )
    env = GeneralPointsEnv(cfg, render_mode="rgb_array")
    lay = study_layout(cfg.num_cards, 128)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        assert env.task is not None
        for card, x in zip(env.task.cards, lay.xs, strict=True):
            centre = obs["image"][lay.y + lay.card_height // 2, x + lay.card_width // 2]
            assert tuple(centre) == _colour(_file(card))
        assert np.array_equal(env.render(), obs["image"])


def test_every_suite_keeps_the_deck_including_ood_visual(deck: Path) -> None:
    cfg = GeneralPointsConfig(observation_mode="image", card_images=str(deck), image_size=96)
    suites = family("generalpoints").suites(json.loads(json.dumps(cfg.to_dict())))
    assert set(suites) >= {"in_distribution", "ood_rule", "ood_visual", "validation"}
    red = suites["ood_visual"]
    assert red["suit_color"] == "red" and red["card_images"] == str(deck)
    env = family("generalpoints").make_env(red)
    obs, _ = env.reset(seed=1)
    lay = study_layout(4, 96)
    for card, x in zip(env.task.cards, lay.xs, strict=True):
        assert card.suit in ("hearts", "diamonds")
        centre = obs["image"][lay.y + lay.card_height // 2, x + lay.card_width // 2]
        assert tuple(centre) == _colour(_file(card))


def test_relative_path_is_read_from_the_working_dir(
    deck: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(deck.parent)
    cards = [Card("A", "spades"), Card("K", "hearts")]
    img = render_hand(cards, 96, deck.name)
    lay = study_layout(2, 96)
    for card, x in zip(cards, lay.xs, strict=True):
        centre = img[lay.y + lay.card_height // 2, x + lay.card_width // 2]
        assert tuple(centre) == _colour(_file(card))


def test_config_round_trips_and_accepts_a_path(deck: Path) -> None:
    cfg = GeneralPointsConfig(card_images=deck)  # type: ignore[arg-type]
    assert cfg.card_images == str(deck)
    assert GeneralPointsConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert dataclasses.replace(cfg, suit_color="red").card_images == str(deck)


def test_missing_folder_and_file_are_errors_naming_them(tmp_path: Path, deck: Path) -> None:
    with pytest.raises(ValueError, match=r"^card_images: .*nowhere.* is not a folder"):
        GeneralPointsConfig(card_images=str(tmp_path / "nowhere"))
    (deck / "HT.png").unlink()
    with pytest.raises(ValueError, match=r"^card_images: .*HT\.png is missing") as err:
        GeneralPointsConfig(observation_mode="image", suit_color="red", card_images=str(deck))
    assert "1 of the 52" in str(err.value)
    Image.new("RGB", CARD_PX, _colour("HT.png")).save(deck / "HT.png")
    GeneralPointsConfig(card_images=str(deck))  # a fixed folder passes: failures aren't cached
    with pytest.raises(ValueError, match=r"^card_images: '' is not a folder path"):
        GeneralPointsConfig(card_images="")


def test_empty_and_undecodable_files_are_errors_naming_them(deck: Path) -> None:
    (deck / "DQ.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"^card_images: .*DQ\.png is empty"):
        GeneralPointsConfig(card_images=str(deck))
    (deck / "DQ.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    cfg = GeneralPointsConfig(observation_mode="image", card_images=str(deck))  # stat-level ok
    # Decoded when the env is built, before any episode: not mid-run.
    with pytest.raises(ValueError, match=r"^card_images: .*DQ\.png is not a readable image"):
        GeneralPointsEnv(cfg)


def test_experiment_config_error_names_the_dotted_field(tmp_path: Path) -> None:
    from cluster.config import ExperimentConfig
    from common.typed_config import ConfigError, from_dict

    data = {"task": {"generalpoints": {"card_images": str(tmp_path / "none")}}}
    with pytest.raises(ConfigError, match=r"^task\.generalpoints\.card_images: "):
        from_dict(ExperimentConfig, data)
