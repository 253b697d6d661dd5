"""Statistics against reference values: hand counts, published tables, and slow references."""

from __future__ import annotations

import math
import random

import pytest

from evaluation.stats import (
    Rate,
    binomial_two_sided_p,
    mcnemar_exact,
    mean_difference_ci,
    paired_comparison,
    t_cdf,
    t_quantile,
    wilson_interval,
)


def test_rate_and_stderr_match_hand_computation() -> None:
    r = Rate(successes=3, n=12)  # p = 0.25, sqrt(0.25 * 0.75 / 12) = 0.125
    assert r.p == 0.25
    assert math.isclose(r.stderr, 0.125)
    assert Rate(0, 10).stderr == 0.0 and Rate(10, 10).stderr == 0.0
    assert Rate(0, 0).to_dict() == {
        "successes": 0, "n": 0, "rate": 0.0, "stderr": 0.0, "wilson95": [0.0, 1.0],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [  # Wilson 95% intervals as published (Newcombe 1998, Table I; R binom.confint "wilson")
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (8, 10, 0.4902, 0.9433),
    ],
)
def test_wilson_interval_matches_published_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson_interval(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4) and got[1] == pytest.approx(hi, abs=1e-4)


def _slow_two_sided(k: int, n: int) -> float:
    """Reference: sum the probabilities of every outcome no more likely than k."""
    probs = [math.comb(n, i) * 0.5**n for i in range(n + 1)]
    return min(1.0, sum(p for p in probs if p <= probs[k] * (1 + 1e-12)))


def test_exact_mcnemar_by_hand_and_against_a_slow_reference() -> None:
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)  # 2 P(X <= 1), X ~ B(10, 1/2)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    for n in range(1, 40):
        for k in range(n + 1):
            assert binomial_two_sided_p(k, n) == pytest.approx(_slow_two_sided(k, n), rel=1e-12)


def test_paired_comparison_counts_discordant_pairs() -> None:
    a = {"p1": True, "p2": True, "p3": False, "p4": False, "p5": True}
    b = {"p1": True, "p2": False, "p3": True, "p4": False, "p5": False}
    out = paired_comparison(a, b)
    assert (out["n"], out["b"], out["c"]) == (5, 2, 1)
    assert out["difference"] == pytest.approx(3 / 5 - 2 / 5)
    assert out["p_value"] == pytest.approx(1.0)  # B(3, 1/2): 2 * P(X <= 1) = 1
    with pytest.raises(ValueError, match="scored different prompts"):
        paired_comparison(a, {"p1": True})


# Student t 0.975 quantiles (df, t), from standard tables.
T_975 = [(1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (9, 2.2622), (29, 2.0452),
         (60, 2.0003), (120, 1.9799)]  # fmt: skip


@pytest.mark.parametrize(("df", "quantile"), T_975)
def test_t_quantile_matches_tables(df: int, quantile: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(quantile, abs=1e-4)
    assert t_cdf(quantile, df) == pytest.approx(0.975, abs=1e-5)


def test_t_cdf_against_closed_forms() -> None:
    for t in (-3.0, -0.5, 0.0, 0.7, 4.0):  # df = 1: Cauchy; df = 2: t / (2 sqrt(2 + t^2))
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
        assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


def test_mean_difference_ci_by_hand() -> None:
    mean, ci = mean_difference_ci([0.10, 0.04, -0.02])
    sd = math.sqrt(((0.06) ** 2 + 0 + (0.06) ** 2) / 2)  # mean 0.04
    half = 4.302652729911275 * sd / math.sqrt(3)
    assert mean == pytest.approx(0.04)
    assert ci == pytest.approx([0.04 - half, 0.04 + half])
    assert mean_difference_ci([0.3]) == (0.3, None)


def test_t_interval_covers_about_95_percent() -> None:
    rng = random.Random(0)
    hits = 0
    for _ in range(2000):
        _, (lo, hi) = mean_difference_ci([rng.gauss(1.0, 2.0) for _ in range(3)])
        hits += lo <= 1.0 <= hi
    assert 0.93 < hits / 2000 < 0.97
