"""Config of the evaluation harness: which held-out suites, how many episodes, how sampled,
how often during training, and which verification budgets to sweep.

Imports nothing heavy (no torch, ray or vllm) so configs load and validate anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.typed_config import check

TUNING_SUITES = ("validation",)
"""Suites for choosing hyperparameters, never evaluated unless named in ``suites``."""


@dataclass
class EvaluationConfig:
    """Held-out ID/OOD evaluation, standalone (`veriray eval`) and scheduled during training."""

    episodes: int | None = None
    """Cap on the distinct prompts per suite. Every suite plays each of its distinct held-out
    prompts once (greedy by default), the same prompts at every point, so comparisons are
    paired; a suite with more prompts than the cap plays a fixed seeded sample of that many.
    (The study: GP 234, V-IRL 48; VLN mini has only 18 routes.) None = the experiment's
    top-level `episodes` (an Evaluator given None plays every distinct prompt)."""
    seed: int = 0
    """Seed of a capped suite's sample and of image-mode suits (V-IRL's held-out routes are
    fixed by the task's split seeds). Independent of the experiment's seed: every point of a
    run, and runs with different training seeds, are scored on the same prompts, so their
    numbers compare (paired)."""
    suites: list[str] = field(default_factory=list)
    """Suites to play, a subset of the task family's (GeneralPoints: in_distribution, ood_rule,
    ood_visual in image mode, and validation: held-out training-rule prompts in no other suite,
    for tuning; a dataset task: the names of its eval files). The experiment checks the names
    against the family. Empty = all of the family's suites except validation."""
    temperature: float | None = None
    """Sampling temperature of evaluation episodes. None = the rollout section's (the study
    samples at 0.2 throughout). Takes effect where evaluation starts its own rollout workers
    (`veriray run`, `veriray eval`); scheduled evaluation reuses the training workers and
    records the sampling they use."""
    max_new_tokens: int | None = None
    """Token cap per evaluation response. None = the rollout section's (same caveat as
    temperature)."""
    viter_sweep: list[int] = field(default_factory=list)
    """Verification budgets to sweep on the evaluated suites (the study: [1, 3, 5, 10] on GP-L).
    Each value replaces the task's budget (the family's budget field: GP `viter`, V-IRL
    `tries_per_point`, a dataset task's `max_turns`). Empty = off."""
    every_k_updates: int = 5
    """Scheduled evaluation during training: evaluate every K optimizer updates (plus the
    init and the last update of each stage). 0 = only the init and stage ends."""
    base: bool = True
    """Evaluate the model before any training (stage "base", where the curves start). Only
    the init point is needed to compare the arms, so a run short of time can skip it; without
    an SFT warm start the first evaluation is the init and always runs."""

    def __post_init__(self) -> None:
        check(
            self.episodes is None or self.episodes >= 1,
            "episodes",
            f"must be >= 1 (or null), got {self.episodes}",
        )
        check(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        check(all(bool(s) for s in self.suites), "suites", "names an empty suite")
        check(len(set(self.suites)) == len(self.suites), "suites", "lists a suite twice")
        check(
            self.temperature is None or self.temperature >= 0,
            "temperature",
            "must be >= 0 (0 = greedy) or null",
        )
        check(
            self.max_new_tokens is None or self.max_new_tokens >= 1,
            "max_new_tokens",
            "must be >= 1 or null",
        )
        check(
            all(v >= 1 for v in self.viter_sweep),
            "viter_sweep",
            f"budgets must be >= 1, got {self.viter_sweep}",
        )
        check(
            len(set(self.viter_sweep)) == len(self.viter_sweep),
            "viter_sweep",
            "lists a budget twice",
        )
        check(self.every_k_updates >= 0, "every_k_updates", "must be >= 0 (0 = stage ends only)")

    def due(self, update: int, last: bool = False) -> bool:
        """Whether scheduled evaluation runs after ``update`` (1-based) optimizer updates."""
        if last:
            return True
        return self.every_k_updates > 0 and update % self.every_k_updates == 0
