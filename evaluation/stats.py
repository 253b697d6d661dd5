"""Success rates with binomial error bars (the study's sqrt(p(1-p)/n))."""

from __future__ import annotations

import math
from dataclasses import dataclass


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

    def to_dict(self) -> dict[str, float | int]:
        return {"successes": self.successes, "n": self.n, "rate": self.p, "stderr": self.stderr}
