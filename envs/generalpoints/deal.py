"""Dealing hands: the held-out split, the hand distribution and evaluation task lists.

Split unit: the multiset of card *numbers* under the active rule (e.g. {1, 3, 10, 10}). Two
hands with the same numbers have the same solutions, so splitting by number multiset (not by
rank multiset) keeps a held-out hand's answers out of training: under the 10-rule, J-Q-3-4
and 10-K-3-4 fall on the same side. The split is computed per rule; under "ordinal" ranks
and numbers coincide.

Split recipe (pure function of the config, stable across runs and machines): enumerate every
number multiset eligible for the variant (solvable for a fixed target; with a face card under
the ordinal rule when `ood_face_cards_only`), sort them, shuffle with `random.Random(split_seed)`
and hold out the first round(heldout_fraction * n) for eval (at least 1 when the fraction is
> 0), the next round(validation_fraction * n) for validation; the rest is train. Split "all"
deals every eligible multiset (a rule that is never trained needs no held-out side).

Evaluation suites (``distinct_tasks``) play every distinct prompt of their split once: every
ordering of every eligible hand, with every target the variant can set for it.

Hand distribution: ranks are drawn i.i.d. uniform over the 13 ranks (an endless shoe, so a
black-suit hand may still hold three 7s), conditioned on the hand being eligible and on the
requested side of the split; suits are i.i.d. uniform over the suit colour's suits. It is
sampled exactly (weights over rank multisets), never by open-ended rejection.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from dataclasses import replace
from functools import lru_cache

import numpy as np

from envs.generalpoints.config import GeneralPointsConfig
from envs.generalpoints.solver import is_solvable
from verifier.generalpoints_rules import (
    RANKS,
    SUITS_BY_COLOR,
    Card,
    GeneralPointsTask,
    rank_value,
)

RankMultiset = tuple[str, ...]
NumberKey = tuple[int, ...]


def number_key(ranks: RankMultiset, rule: str) -> NumberKey:
    return tuple(sorted(rank_value(r, rule) for r in ranks))


def _eligible(key: NumberKey, target: int, target_mode: str, rule: str, face_only: bool) -> bool:
    if rule == "ordinal" and face_only and max(key) <= 10:
        return False
    return target_mode == "one_op" or is_solvable(key, target)


@lru_cache(maxsize=64)
def _split_keys(
    num_cards: int,
    target: int,
    target_mode: str,
    rule: str,
    face_only: bool,
    heldout_fraction: float,
    validation_fraction: float,
    split_seed: int,
) -> tuple[frozenset[NumberKey], frozenset[NumberKey], frozenset[NumberKey]]:
    keys = {
        number_key(ranks, rule)
        for ranks in itertools.combinations_with_replacement(RANKS, num_cards)
    }
    eligible = sorted(k for k in keys if _eligible(k, target, target_mode, rule, face_only))
    random.Random(split_seed).shuffle(eligible)
    n_eval = round(heldout_fraction * len(eligible))
    if heldout_fraction > 0:
        n_eval = max(n_eval, 1)
    n_val = round(validation_fraction * len(eligible))
    if validation_fraction > 0:
        n_val = max(n_val, 1)
    return (
        frozenset(eligible[n_eval + n_val :]),
        frozenset(eligible[n_eval : n_eval + n_val]),
        frozenset(eligible[:n_eval]),
    )


def split_keys(config: GeneralPointsConfig) -> tuple[frozenset[NumberKey], frozenset[NumberKey]]:
    """(train, eval) sets of number multisets for this variant; disjoint, deterministic."""
    train, _, held_out = split_sets(config)
    return train, held_out


def split_sets(
    config: GeneralPointsConfig,
) -> tuple[frozenset[NumberKey], frozenset[NumberKey], frozenset[NumberKey]]:
    """(train, validation, eval) sets of number multisets; disjoint, deterministic."""
    return _split_keys(
        config.num_cards,
        config.target,
        config.target_mode,
        config.face_card_rule,
        config.ood_face_cards_only,
        float(config.heldout_fraction),
        float(config.validation_fraction),
        config.split_seed,
    )


def split_of(config: GeneralPointsConfig) -> frozenset[NumberKey]:
    """The number multisets config.split deals from."""
    train, validation, held_out = split_sets(config)
    if config.split == "all":
        return train | validation | held_out
    return {"train": train, "validation": validation, "eval": held_out}[config.split]


def _multinomial_weight(ranks: RankMultiset) -> int:
    """How many ordered i.i.d. draws give this rank multiset (n! / prod(count!))."""
    weight = math.factorial(len(ranks))
    for count in Counter(ranks).values():
        weight //= math.factorial(count)
    return weight


@lru_cache(maxsize=64)
def _hand_table(
    num_cards: int, rule: str, keys: frozenset[NumberKey]
) -> tuple[tuple[RankMultiset, ...], np.ndarray]:
    hands = tuple(
        ranks
        for ranks in itertools.combinations_with_replacement(RANKS, num_cards)
        if number_key(ranks, rule) in keys
    )
    weights = np.array([_multinomial_weight(h) for h in hands], dtype=np.float64)
    return hands, weights / weights.sum() if len(hands) else weights


def eligible_hands(config: GeneralPointsConfig) -> tuple[tuple[RankMultiset, ...], np.ndarray]:
    """Rank multisets dealable for config.split and their probabilities (sorted, cached)."""
    hands, probs = _hand_table(config.num_cards, config.face_card_rule, split_of(config))
    if not hands:
        raise ValueError(
            f"split: no dealable hands for split={config.split!r} with num_cards="
            f"{config.num_cards}, target={config.target}, target_mode={config.target_mode!r}, "
            f"face_card_rule={config.face_card_rule!r}"
        )
    return hands, probs


def one_op_target(numbers: list[int], rng: np.random.Generator) -> int:
    """Fold the numbers (in random order) with one random op per step; results stay integers
    >= 0: subtraction takes the larger first, division only when exact."""
    order = [numbers[i] for i in rng.permutation(len(numbers))]
    acc = order[0]
    for x in order[1:]:
        options = [acc + x, acc * x, abs(acc - x)]
        if x and acc % x == 0:
            options.append(acc // x)
        elif acc and x % acc == 0:
            options.append(x // acc)
        acc = options[int(rng.integers(len(options)))]
    return acc


def deal_task(config: GeneralPointsConfig, rng: np.random.Generator) -> GeneralPointsTask:
    """One hand for this variant and split, drawn from `rng` (reproducible for a seed)."""
    hands, probs = eligible_hands(config)
    ranks = list(hands[int(rng.choice(len(hands), p=probs))])
    ranks = [ranks[i] for i in rng.permutation(len(ranks))]
    suits = SUITS_BY_COLOR[config.suit_color]
    cards = tuple(Card(rank, suits[int(rng.integers(len(suits)))]) for rank in ranks)
    task = GeneralPointsTask(
        cards=cards, target=config.target, face_card_rule=config.face_card_rule
    )
    if config.target_mode == "one_op":
        task = replace(task, target=one_op_target(list(task.numbers), rng))
    return task


def one_op_targets(numbers: tuple[int, ...]) -> set[int]:
    """Every target ``one_op_target`` can set for these numbers (all fold orders and ops)."""
    out: set[int] = set()
    for order in set(itertools.permutations(numbers)):
        accs = {order[0]}
        for x in order[1:]:
            nxt = set()
            for acc in accs:
                nxt |= {acc + x, acc * x, abs(acc - x)}
                if x and acc % x == 0:
                    nxt.add(acc // x)
                elif acc and x % acc == 0:
                    nxt.add(x // acc)
            accs = nxt
        out |= accs
    return out


def distinct_tasks(
    config: GeneralPointsConfig, limit: int | None = None, seed: int = 0
) -> list[GeneralPointsTask]:
    """Every distinct prompt of config.split once: each ordering of each dealable hand, with
    each target the variant can set (the fixed target, or every one_op target), in a stable
    order. Suits: the first suit of the suit colour in text mode (the prompt does not show
    them), a seeded draw per prompt in image mode. More than ``limit`` prompts: a seeded sample
    of ``limit``, kept in the stable order. The same list for the same (config, limit, seed).
    """
    hands, _ = eligible_hands(config)
    rule, suits = config.face_card_rule, SUITS_BY_COLOR[config.suit_color]
    rng = random.Random(seed)
    tasks = []
    for hand in hands:
        for ranks in sorted(set(itertools.permutations(hand))):
            numbers = tuple(rank_value(r, rule) for r in ranks)
            fixed = config.target_mode == "fixed"
            for target in [config.target] if fixed else sorted(one_op_targets(numbers)):
                if config.observation_mode == "image":
                    cards = tuple(Card(r, suits[rng.randrange(len(suits))]) for r in ranks)
                else:
                    cards = tuple(Card(r, suits[0]) for r in ranks)
                tasks.append(GeneralPointsTask(cards=cards, target=target, face_card_rule=rule))
    if limit is not None and len(tasks) > limit:
        keep = sorted(random.Random(seed).sample(range(len(tasks)), limit))
        tasks = [tasks[i] for i in keep]
    return tasks


def eval_tasks(config: GeneralPointsConfig, n: int, seed: int = 0) -> list[GeneralPointsTask]:
    """n tasks drawn i.i.d. from the eval split (split forced to "eval"), the same list for the
    same (config, n, seed); hands may repeat. Evaluation suites use ``distinct_tasks``."""
    eval_config = replace(config, split="eval")
    rng = np.random.default_rng(seed)
    return [deal_task(eval_config, rng) for _ in range(n)]
