"""Config of the DeepSpeed learner group. Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cluster.typed_config import check


@dataclass
class LearnerConfig:
    """The training side: DeepSpeed ranks as Ray actors, optimizer, batching."""

    num_ranks: int = 1
    """Number of DeepSpeed ranks (one Ray actor each)."""
    zero_stage: Literal[0, 1, 2, 3] = 0
    """DeepSpeed ZeRO stage."""
    offload_optimizer: bool = False
    """ZeRO-Offload: keep optimizer states on the CPU (stage >= 1; uses DeepSpeed's CPU Adam)."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Training precision of the model weights."""
    lr: float = 1e-5
    """Peak learning rate."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Global gradient-norm clip (0 = off)."""
    micro_batch_size: int = 4
    """Sequences per rank per forward/backward."""
    grad_accum_steps: int = 1
    """Micro-batches accumulated per optimizer step."""
    cpus_per_rank: float = 1.0
    """CPUs reserved for each rank in its placement group bundle."""
    gpus_per_rank: float = 0.0
    """GPUs reserved for each rank (0 on CPU machines; then the backend is gloo)."""
    seed: int = 0
    """Seed of model init and data order on every rank."""

    def __post_init__(self) -> None:
        check(self.num_ranks >= 1, "num_ranks", f"must be >= 1, got {self.num_ranks}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        check(self.grad_clip >= 0, "grad_clip", "must be >= 0 (0 = off)")
        check(self.micro_batch_size >= 1, "micro_batch_size", "must be >= 1")
        check(self.grad_accum_steps >= 1, "grad_accum_steps", "must be >= 1")
        check(self.cpus_per_rank > 0, "cpus_per_rank", "must be > 0")
        check(self.gpus_per_rank >= 0, "gpus_per_rank", "must be >= 0")
        check(
            not self.offload_optimizer or self.zero_stage >= 1,
            "offload_optimizer",
            "needs zero_stage 1, 2 or 3 (ZeRO-Offload partitions optimizer states)",
        )
