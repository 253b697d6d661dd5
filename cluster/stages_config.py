"""Configs of the controller's stages: SFT warm start (+ continued-SFT branch) and RL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.typed_config import check


@dataclass
class SFTStageConfig:
    """Supervised fine-tuning on expert answers from the env oracles."""

    enabled: bool = False
    """Run the SFT warm start (the study's init for RL)."""
    examples: int = 256
    """Expert conversations generated from the oracle on the training split."""
    warmup_epochs: int = 1
    """Passes over the examples for the warm start."""
    branch_compute: Literal["match_rl", "steps"] = "match_rl"
    """Budget of the SFT arm (continued SFT from the warm start, the other side of the
    SFT-vs-RL comparison). match_rl: it runs after the RL arm for the same training compute
    (the study's equal-FLOPs comparison), evaluated where each RL evaluation point lies on
    the GFLOPs axis; needs rl.enabled. steps: exactly branch_steps optimizer steps, evaluated
    every evaluation.every_k_updates steps."""
    branch_steps: int = 0
    """Optimizer steps of the SFT arm when branch_compute is 'steps' (0 = no SFT arm)."""
    thought: bool = False
    """Oracle answers carry short reasoning text before the JSON answer."""
    lr: float | None = None
    """Learning rate of the SFT warm start (null = learner.lr)."""
    arm_lr: float | None = None
    """Learning rate of the SFT arm, continued SFT from the warm start with a fresh optimizer
    (null = sft.lr). Like rl.lr, choose it on the validation suite, never on the eval suites."""
    seed: int = 0
    """Seed of dealing the SFT examples and of the warm start's order (the SFT arm's order
    comes from its training seed, see study.seeds)."""
    warm_start_from: str | None = None
    """Reuse the finished warm start of another run folder (its sft/hf weights and
    sft/compute.json) instead of training one: arms tuned or repeated from one init. The
    config's SFT fields must be the ones that run used (its expert rows are dealt again)."""

    def __post_init__(self) -> None:
        check(self.examples >= 1, "examples", f"must be >= 1, got {self.examples}")
        check(self.warmup_epochs >= 1, "warmup_epochs", "must be >= 1")
        check(self.branch_steps >= 0, "branch_steps", "must be >= 0")
        check(self.lr is None or self.lr > 0, "lr", "must be > 0 or null")
        check(self.arm_lr is None or self.arm_lr > 0, "arm_lr", "must be > 0 or null")


@dataclass
class RLStageConfig:
    """PPO (or GRPO) from the SFT warm start (or the base model if SFT is off)."""

    enabled: bool = False
    """Run the RL stage."""
    updates: int = 4
    """Learner updates (each: generate episodes, train, publish weights)."""
    episodes_per_update: int = 32
    """Episodes generated for each update (the study: 2,048 transitions per update)."""
    samples_per_task: int = 1
    """Episodes played on each dealt task (> 1 gives group baselines such as GRPO a group)."""
    mode: Literal["on_policy", "async"] = "on_policy"
    """on_policy: generate with version v, train, sync, repeat (the study's PPO). async:
    generate the next batch while the learner trains (needs buffer.max_staleness >= 1)."""
    checkpoint_every: int = 0
    """Save a resumable checkpoint every N updates (0 = only after the last update)."""
    consume_timeout_s: float = 1800.0
    """How long the learner waits for a batch from the replay buffer before failing."""
    lr: float | None = None
    """Learning rate of the RL stage (null = learner.lr)."""
    max_restarts: int = 2
    """How many times an RL arm starts again by itself after one of its actors dies (a
    learner rank, the replay buffer): from its newest complete checkpoint, or from the arm's
    start when it has none. Updates after that checkpoint are played and trained again, so
    the policy has trained each update's episodes exactly once. 0: a death ends the run."""

    def __post_init__(self) -> None:
        check(self.updates >= 1, "updates", f"must be >= 1, got {self.updates}")
        check(self.max_restarts >= 0, "max_restarts", f"must be >= 0, got {self.max_restarts}")
        check(self.episodes_per_update >= 1, "episodes_per_update", "must be >= 1")
        check(
            self.samples_per_task >= 1 and self.episodes_per_update % self.samples_per_task == 0,
            "samples_per_task",
            f"must be >= 1 and divide episodes_per_update={self.episodes_per_update}",
        )
        check(self.checkpoint_every >= 0, "checkpoint_every", "must be >= 0")
        check(self.consume_timeout_s > 0, "consume_timeout_s", "must be > 0")
        check(self.lr is None or self.lr > 0, "lr", "must be > 0 or null")


PRIMARY_COMPARISON = "rl_minus_sft"


@dataclass
class StudyConfig:
    """The study design, fixed before the run: how many training seeds, and the primary
    endpoint the report states first."""

    seeds: int = 1
    """Training seeds of the two arms: seeds seed, seed + 1, ... each run the RL arm and the
    SFT arm from ONE shared SFT warm start and ONE init evaluation. A seed sets the RL tasks
    dealt, the SFT arm's data order and the value head's init; the rollout engines' sampling
    stream runs on across arms (one engine seed per run)."""
    primary_suite: str = "ood_rule"
    """Suite of the primary endpoint (the study's question: out-of-distribution success)."""
    primary_metric: Literal["success", "first_try", "step_accuracy"] = "success"
    """Metric of the primary endpoint: success within the verification budget (GeneralPoints,
    V-IRL route success), first-try success, or V-IRL per-step accuracy."""
    primary_comparison: Literal["rl_minus_sft"] = PRIMARY_COMPARISON
    """The primary endpoint: the RL arm's metric minus the SFT arm's, paired on the same
    prompts, at matched training compute, at the last evaluation point; its 95% interval
    across seeds and each seed's exact McNemar p."""

    def __post_init__(self) -> None:
        check(self.seeds >= 1, "seeds", f"must be >= 1, got {self.seeds}")
        check(bool(self.primary_suite), "primary_suite", "must name a suite")


@dataclass
class RLlibBaselineConfig:
    """The non-language reference policy: RLlib PPO on an MLP over the task's discrete
    encoding (`veriray baseline rllib`), trained on the training split of the ID rule and
    scored by the task's verifier on the same held-out prompts as the language model."""

    iterations: int = 30
    """PPO training iterations (each samples train_batch_size env steps)."""
    train_batch_size: int = 1024
    """Env steps sampled per iteration."""
    minibatch_size: int = 128
    """SGD minibatch size within an iteration."""
    num_epochs: int = 6
    """Passes over each iteration's batch."""
    lr: float = 1.0e-3
    """Adam learning rate."""
    hidden_sizes: list[int] = field(default_factory=lambda: [128, 128])
    """Hidden layer widths of the policy and value MLPs."""
    entropy_coeff: float = 0.01
    """Entropy bonus (keeps the policy exploring its small action menu)."""
    gamma: float = 0.9
    """Discount. Each answer is rewarded when it is given, so a short horizon keeps the
    credit of a route's last answer off its first ones."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    num_env_runners: int = 0
    """RLlib env runner actors (0 = sample in the algorithm's own process)."""

    def __post_init__(self) -> None:
        check(self.iterations >= 1, "iterations", f"must be >= 1, got {self.iterations}")
        check(
            self.train_batch_size >= self.minibatch_size >= 1,
            "minibatch_size",
            f"must be in [1, train_batch_size={self.train_batch_size}], got {self.minibatch_size}",
        )
        check(self.num_epochs >= 1, "num_epochs", f"must be >= 1, got {self.num_epochs}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(
            bool(self.hidden_sizes) and all(h >= 1 for h in self.hidden_sizes),
            "hidden_sizes",
            f"must list positive widths, got {self.hidden_sizes}",
        )
        check(self.entropy_coeff >= 0, "entropy_coeff", f"must be >= 0, got {self.entropy_coeff}")
        check(self.num_env_runners >= 0, "num_env_runners", "must be >= 0")
        check(0 < self.gamma <= 1, "gamma", f"must be in (0, 1], got {self.gamma}")
        check(0 <= self.gae_lambda <= 1, "gae_lambda", f"must be in [0, 1], got {self.gae_lambda}")


@dataclass
class BaselinesConfig:
    """Reference policies run by `veriray baseline`, shown as reference lines in the run's
    report."""

    rllib: RLlibBaselineConfig = field(default_factory=RLlibBaselineConfig)
    """`veriray baseline rllib`: PPO on an MLP over the task's discrete encoding."""
