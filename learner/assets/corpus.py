"""Text the tiny tokenizer is trained on: the tasks' own prompts, answers and feedback."""

from __future__ import annotations

import itertools
import random

_WORDS = (
    "You are an expert card game player. Cards: Ace, 2, 3, 4, 5, 6, 7, 8, 9, 10, J, Q, K "
    "of spades, clubs, hearts, diamonds. J, Q and K count as 10. K counts as 13, Q counts as "
    "12, J counts as 11. Use each card's number exactly once with + - * / and parentheses to "
    'make the target. Answer in JSON: {"cards": [...], "number": [...], "formula": "..."}'
    " You failed this trial because your formula is incorrect. The formula is not legal. "
    "You are navigating a city. Instructions: turn to face northeast at the intersection near "
    "the bakery, go forward, turn slightly left, stop at the destination. Actions: forward(), "
    "turn_direction(north), turn_direction(left), stop(). Current observation: landmark on the "
    "right. north northeast east southeast south southwest west northwest left right slightly"
)


def task_corpus(seed: int = 0, n: int = 2000) -> list[str]:
    """Task text: prompts, oracle answers and feedback of both task families.

    Uses the environments when they are importable; the fixed text above keeps the tokenizer
    buildable (and its core merges stable) either way.
    """
    rng = random.Random(seed)
    texts = [_WORDS] * 20
    texts += [
        f"{a} {op} {b} = {c}"
        for a, b, c in itertools.islice(
            ((rng.randint(1, 13), rng.randint(1, 13), rng.randint(1, 99)) for _ in range(n)), n
        )
        for op in "+-*/"
    ]
    texts += _env_texts(seed, n // 20)
    return texts


def _env_texts(seed: int, n: int) -> list[str]:
    try:
        from envs.generalpoints.oracle import oracle_texts as gp_texts
    except ImportError:
        gp_texts = None
    try:
        from envs.virl.oracle import oracle_texts as virl_texts
    except ImportError:
        virl_texts = None
    out: list[str] = []
    for fn in (gp_texts, virl_texts):
        if fn is not None:
            out.extend(fn(seed=seed, n=n))
    return out
