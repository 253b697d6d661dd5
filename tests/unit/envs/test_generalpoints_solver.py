"""Exact solver: the paper's counts, fractional solutions, and well-formed expressions."""

import itertools
from fractions import Fraction

from envs.generalpoints.solver import (
    evaluate,
    is_solvable,
    leaves,
    reachable,
    solve,
    steps,
    to_formula,
)
from verifier.generalpoints_rules import RANKS, rank_value
from verifier.safe_arith import safe_eval


def _number_multisets(rule: str, n: int = 4) -> set[tuple[int, ...]]:
    return {
        tuple(sorted(rank_value(r, rule) for r in ranks))
        for ranks in itertools.combinations_with_replacement(RANKS, n)
    }


def test_ten_rule_counts_match_paper():
    rank_multisets = list(itertools.combinations_with_replacement(RANKS, 4))
    assert len(rank_multisets) == 1820
    keys = _number_multisets("ten")
    assert len(keys) == 715
    assert sum(is_solvable(k, 24) for k in keys) == 566


def test_fraction_only_solution_is_found():
    expr = solve([8, 3, 8, 3], 24)
    assert expr is not None
    assert evaluate(expr) == 24
    # Every solution of {3, 3, 8, 8} needs a fractional intermediate (float search misses it).
    assert to_formula(expr).replace(" ", "") == "8/(3-8/3)"


def test_known_unsolvable_hands():
    assert not is_solvable([1, 1, 1, 1], 24)
    assert not is_solvable([1, 1, 1, 2], 24)
    assert not is_solvable([1, 1, 1, 7], 24)
    assert is_solvable([1, 1, 1, 8], 24)  # (1 + 1 + 1) * 8


def test_every_solution_uses_the_hand_and_reaches_the_target():
    for key in sorted(_number_multisets("ordinal"))[::7]:
        expr = solve(key, 24)
        if expr is None:
            continue
        assert sorted(leaves(expr)) == list(key)
        assert evaluate(expr) == 24
        # The printed formula means the same thing when parsed back (parenthesization).
        result = safe_eval(to_formula(expr))
        assert result.ok and result.value == 24
        assert sorted(result.numbers) == list(key)


def test_solver_agrees_with_brute_force_reachable_set():
    # The inverted lookup in solve() must agree with "target in reachable(full hand)".
    for key in sorted(_number_multisets("ten"))[::11]:
        for target in (24, 10, 1, 0, -3, Fraction(1, 2)):
            assert is_solvable(key, target) == (Fraction(target) in reachable(key)), (key, target)


def test_other_targets_and_sizes():
    assert solve([3, 8], 24) is not None
    assert solve([3, 7], 24) is None
    assert solve([2, 5], 0) is None
    assert evaluate(solve([5, 5], 0)) == 0
    assert evaluate(solve([1, 2, 3, 4, 5], 100)) == 100


def test_steps_end_at_target():
    lines = steps(solve([8, 3, 8, 3], 24))
    assert len(lines) == 3
    assert lines[-1].endswith("= 24")
