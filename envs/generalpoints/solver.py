"""Exact solver for "combine these numbers with + - * / to reach a target".

Arithmetic is exact (fractions.Fraction), so 8 / (3 - 8 / 3) = 24 is found, unlike a float
search. Speed comes from memoizing over sorted number multisets:

* `reachable(ms)` is the set of all values a multiset can make (memoized; sub-multisets of
  different hands are shared, so all 4-card hands together need only the <= 3-card sets).
* `solve(ms, target)` never builds the full hand's value set: for each split of the hand into
  two parts it walks the smaller part's values and *inverts* each operation (a + b = t means
  b = t - a) to look the partner up in the other part's set, which is O(1).

Expressions are trees: an int leaf, or (op, left, right) with op in "+-*/".
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from functools import lru_cache

Expr = int | tuple[str, "Expr", "Expr"]
Multiset = tuple[int, ...]

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_LEAF_PRECEDENCE = 3
# Memo sizes: every sub-multiset of 13 values up to 4 elements is < 2,400 entries; the bound
# only matters for 5-card hands, where it caps memory.
_REACHABLE_CACHE = 8192
_SOLVE_CACHE = 65536


def _key(numbers: tuple[int, ...] | list[int]) -> Multiset:
    return tuple(sorted(numbers))


@lru_cache(maxsize=4096)
def _splits(numbers: Multiset) -> tuple[tuple[Multiset, Multiset], ...]:
    """Every way to cut a sorted multiset into two non-empty parts, each unordered pair once."""
    n = len(numbers)
    seen: set[tuple[Multiset, Multiset]] = set()
    # Masks that contain element 0 enumerate each {left, right} pair exactly once by position;
    # the set removes duplicates that equal numbers create.
    for mask in range(1, 1 << n, 2):
        if mask == (1 << n) - 1:
            continue
        left = tuple(numbers[i] for i in range(n) if mask >> i & 1)
        right = tuple(numbers[i] for i in range(n) if not mask >> i & 1)
        pair = (left, right) if left <= right else (right, left)
        seen.add(pair)
    return tuple(sorted(seen))


def _combine(a: Fraction, b: Fraction) -> Iterator[Fraction]:
    yield a + b
    yield a - b
    yield b - a
    yield a * b
    if b:
        yield a / b
    if a:
        yield b / a


@lru_cache(maxsize=_REACHABLE_CACHE)
def reachable(numbers: Multiset) -> frozenset[Fraction]:
    """All values the sorted multiset can make using each number exactly once."""
    if len(numbers) == 1:
        return frozenset({Fraction(numbers[0])})
    values: set[Fraction] = set()
    for left, right in _splits(numbers):
        right_values = reachable(right)
        for a in reachable(left):
            for b in right_values:
                values.update(_combine(a, b))
    return frozenset(values)


def _partners(a: Fraction, target: Fraction, other: frozenset[Fraction]) -> Iterator[tuple]:
    """(op, b, a_first) with b in `other` such that `a op b` (or `b op a`) equals target."""
    candidates: list[tuple[str, Fraction, bool]] = [
        ("+", target - a, True),
        ("-", a - target, True),
        ("-", target + a, False),
    ]
    if a:
        candidates.append(("*", target / a, True))
        candidates.append(("/", target * a, False))  # b / a = t
        if target:
            candidates.append(("/", a / target, True))  # a / b = t
    for op, b, a_first in candidates:
        if b in other:
            yield op, b, a_first
    if not a and not target:
        # 0 * b = 0 and 0 / b = 0 hold for any (non-zero) b; pick one deterministically.
        for b in sorted(other):
            yield ("*", b, True)
            break


def _find(numbers: Multiset, target: Fraction) -> Expr | None:
    if len(numbers) == 1:
        return numbers[0] if target == numbers[0] else None
    for left, right in _splits(numbers):
        left_values, right_values = reachable(left), reachable(right)
        # Walk the smaller side, look the partner up in the larger one.
        if len(left_values) > len(right_values):
            left, right = right, left
            left_values, right_values = right_values, left_values
        for a in sorted(left_values):
            for op, b, a_first in _partners(a, target, right_values):
                sub_a, sub_b = _find(left, a), _find(right, b)
                assert sub_a is not None and sub_b is not None  # a, b come from reachable()
                return (op, sub_a, sub_b) if a_first else (op, sub_b, sub_a)
    return None


@lru_cache(maxsize=_SOLVE_CACHE)
def _solve_sorted(numbers: Multiset, target: Fraction) -> Expr | None:
    return _find(numbers, target)


def solve(numbers: tuple[int, ...] | list[int], target: int | Fraction) -> Expr | None:
    """An expression over exactly these numbers whose value is target, or None."""
    return _solve_sorted(_key(numbers), Fraction(target))


def is_solvable(numbers: tuple[int, ...] | list[int], target: int | Fraction) -> bool:
    return solve(numbers, target) is not None


def evaluate(expr: Expr) -> Fraction:
    """Exact value of an expression tree (raises ZeroDivisionError like Fraction does)."""
    if isinstance(expr, int):
        return Fraction(expr)
    op, left, right = expr
    a, b = evaluate(left), evaluate(right)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b


def leaves(expr: Expr) -> list[int]:
    if isinstance(expr, int):
        return [expr]
    return leaves(expr[1]) + leaves(expr[2])


def _format(expr: Expr) -> tuple[str, int]:
    if isinstance(expr, int):
        return str(expr), _LEAF_PRECEDENCE
    op, left, right = expr
    prec = _PRECEDENCE[op]
    left_text, left_prec = _format(left)
    right_text, right_prec = _format(right)
    if left_prec < prec:
        left_text = f"({left_text})"
    # a - (b - c) and a / (b / c) need their parentheses; a + (b + c) does not.
    if right_prec < prec or (right_prec == prec and op in "-/"):
        right_text = f"({right_text})"
    return f"{left_text} {op} {right_text}", prec


def to_formula(expr: Expr) -> str:
    """Infix text with only the parentheses precedence needs, e.g. '8 / (3 - 8 / 3)'."""
    return _format(expr)[0]


def format_value(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else str(value)


def steps(expr: Expr) -> list[str]:
    """The solution as one line per operation, innermost first: ['8 / 3 = 8/3', ...]."""
    if isinstance(expr, int):
        return []
    op, left, right = expr
    lines = steps(left) + steps(right)
    a, b = format_value(evaluate(left)), format_value(evaluate(right))
    a = f"({a})" if "/" in a or a.startswith("-") else a
    b = f"({b})" if "/" in b or b.startswith("-") else b
    lines.append(f"{a} {op} {b} = {format_value(evaluate(expr))}")
    return lines
