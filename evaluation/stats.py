"""Statistics of the study, as small pure functions (standard library only).

- ``Rate``: a success rate with its binomial s.e. sqrt(p(1-p)/n) (the study's error bars) and
  its Wilson 95% score interval (honest near 0% and 100%, where the s.e. collapses).
- ``mcnemar_exact``: the exact McNemar test on paired outcomes: under the null, the discordant
  pairs (b: only A succeeded, c: only B succeeded) split as Binomial(b + c, 1/2); two-sided p.
- ``paired_comparison``: two checkpoints' outcomes on the same prompts, aligned by prompt id.
- ``mean_difference_ci``: the mean of per-seed differences with a Student-t 95% interval.

Each is tested against published or hand-computed reference values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 0.975 quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


@dataclass(frozen=True)
class Rate:
    successes: int
    n: int

    @property
    def p(self) -> float:
        return self.successes / self.n if self.n else 0.0

    @property
    def stderr(self) -> float:
        """Binomial standard error sqrt(p(1-p)/n)."""
        return math.sqrt(self.p * (1 - self.p) / self.n) if self.n else 0.0

    @property
    def wilson95(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.n)

    def to_dict(self) -> dict[str, float | int | list[float]]:
        return {
            "successes": self.successes,
            "n": self.n,
            "rate": self.p,
            "stderr": self.stderr,
            "wilson95": list(self.wilson95),
        }


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p of k successes in n fair coin flips: the probability of an outcome
    at most as likely as k (for p = 1/2: twice the smaller tail, capped at 1)."""
    if n == 0:
        return 1.0
    tail = min(k, n - k)
    mass = sum(math.comb(n, i) for i in range(tail + 1)) / 2**n
    return min(1.0, 2 * mass)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact McNemar p from the discordant counts (b: only A succeeded, c: only B)."""
    return binomial_two_sided_p(b, b + c)


def paired_comparison(a: dict[str, bool], b: dict[str, bool]) -> dict[str, float | int]:
    """A minus B on the same prompts (prompt id -> outcome), with the exact McNemar test.

    Returns n, rate_a, rate_b, difference (rate_a - rate_b), b (A only), c (B only), p_value.
    Both must hold exactly the same prompt ids: an unpaired comparison is refused."""
    if a.keys() != b.keys():
        only_a, only_b = len(a.keys() - b.keys()), len(b.keys() - a.keys())
        raise ValueError(
            f"paired_comparison: the two checkpoints scored different prompts ({only_a} only in "
            f"the first, {only_b} only in the second); evaluate both on the same suite"
        )
    if not a:
        raise ValueError("paired_comparison: no prompts")
    n = len(a)
    only_a = sum(a[k] and not b[k] for k in a)
    only_b = sum(b[k] and not a[k] for k in a)
    rate_a, rate_b = sum(a.values()) / n, sum(b.values()) / n
    return {
        "n": n,
        "rate_a": rate_a,
        "rate_b": rate_b,
        "difference": rate_a - rate_b,
        "b": only_a,
        "c": only_b,
        "p_value": mcnemar_exact(only_a, only_b),
    }


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):  # fmt: skip
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: int) -> float:
    """Student t cumulative distribution function."""
    tail = 0.5 * regularized_beta(df / (df + t * t), df / 2.0, 0.5)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(q: float, df: int) -> float:
    """The q quantile of Student's t with df degrees of freedom (bisection on ``t_cdf``)."""
    if not 0.0 < q < 1.0 or df < 1:
        raise ValueError(f"t_quantile: need 0 < q < 1 and df >= 1, got q={q}, df={df}")
    lo, hi = -1e6, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def mean_difference_ci(values: list[float]) -> tuple[float, list[float] | None]:
    """Mean of per-seed values and its Student-t 95% interval (None with one value)."""
    if not values:
        raise ValueError("mean_difference_ci: no values")
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
    return mean, [mean - half, mean + half]
