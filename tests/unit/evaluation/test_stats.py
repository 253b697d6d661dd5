"""Binomial error bars against hand counts."""

from __future__ import annotations

import math

from evaluation.stats import Rate


def test_rate_and_stderr_match_hand_computation() -> None:
    r = Rate(successes=3, n=12)  # p = 0.25, sqrt(0.25 * 0.75 / 12) = 0.125
    assert r.p == 0.25
    assert math.isclose(r.stderr, 0.125)
    assert Rate(0, 10).stderr == 0.0 and Rate(10, 10).stderr == 0.0
    assert Rate(0, 0).to_dict() == {"successes": 0, "n": 0, "rate": 0.0, "stderr": 0.0}
