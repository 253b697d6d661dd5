"""Generate the countdown data offline: reach a target from a few numbers with + - * /.

    python examples/countdown/generate.py [--out examples/countdown/data] [--seed 0]

Writes JSON Lines files (one object per line: prompt, numbers, target, solution):
  train.jsonl       3-4 numbers from 1..20 (the training distribution)
  validation.jsonl  the same distribution, held out, for tuning
  test_id.jsonl     the same distribution, held out: the in-distribution suite
  test_large.jsonl  OOD: 3-4 numbers from 21..60 (larger numbers)
  test_more.jsonl   OOD: 5 numbers from 1..20 (more of them)
Every puzzle has a solution (the expression it was built from, the ``solution`` column: the
SFT examples' answer); no puzzle appears in two files.
"""

from __future__ import annotations

import argparse
import json
import random
from fractions import Fraction
from pathlib import Path

OPS = "+-*/"
MAX_TARGET = 1000

PROMPT = (
    "Using the numbers {numbers}, each exactly once, and + - * / with parentheses, make "
    "{target}. Answer with the expression only, on the last line, e.g. (3 + 5) * 2"
)


def _combine(a: Fraction, b: Fraction, op: str) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b if b != 0 else None


def puzzle(rng: random.Random, count: int, lo: int, hi: int) -> dict | None:
    """Combine ``count`` random numbers in a random order with random operators; keep the
    result when it is a positive integer up to MAX_TARGET."""
    numbers = [rng.randint(lo, hi) for _ in range(count)]
    order = numbers[:]
    rng.shuffle(order)
    value, text = Fraction(order[0]), str(order[0])
    for n in order[1:]:
        op = rng.choice(OPS)
        left_first = rng.random() < 0.5
        a, b = (value, Fraction(n)) if left_first else (Fraction(n), value)
        result = _combine(a, b, op)
        if result is None:
            return None
        value = result
        inner = f"({text})" if " " in text else text  # a lone number needs no parentheses
        text = f"{inner} {op} {n}" if left_first else f"{n} {op} {inner}"
    if value.denominator != 1 or not 0 < value <= MAX_TARGET:
        return None
    target = int(value)
    shown = sorted(numbers)
    return {
        "prompt": PROMPT.format(numbers=shown, target=target),
        "numbers": shown,
        "target": target,
        "solution": text,
    }


def draw(rng: random.Random, n: int, counts: tuple[int, ...], lo: int, hi: int, seen: set):
    out: list[dict] = []
    while len(out) < n:
        p = puzzle(rng, rng.choice(counts), lo, hi)
        if p is None:
            continue
        key = (tuple(p["numbers"]), p["target"])
        if key in seen:
            continue
        seen.add(key)
        out.append(p)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=200, help="rows per evaluation file")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    seen: set = set()
    files = {
        "test_id": draw(rng, args.test, (3, 4), 1, 20, seen),
        "validation": draw(rng, args.test, (3, 4), 1, 20, seen),
        "test_large": draw(rng, args.test, (3, 4), 21, 60, seen),
        "test_more": draw(rng, args.test, (5,), 1, 20, seen),
        "train": draw(rng, args.train, (3, 4), 1, 20, seen),  # held-out rows come first
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"{out / name}.jsonl: {len(rows)} puzzles")


if __name__ == "__main__":
    main()
