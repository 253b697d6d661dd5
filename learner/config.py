"""Config of the DeepSpeed learner group (PPO, SFT, schedule). Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.typed_config import check

# Names registered in learner/losses.py and learner/advantages.py. Listed here (not imported)
# so that this module loads without torch; a unit test checks the lists match the registries.
POLICY_LOSS_NAMES = ("ppo_turn", "ppo_token", "grpo")
ADVANTAGE_NAMES = ("gae", "grpo", "rloo")


@dataclass
class PPOConfig:
    """The RL update. Defaults are the study's turn-level PPO."""

    policy_loss: Literal["ppo_turn", "ppo_token", "grpo"] = "ppo_turn"
    """Policy loss by registry name: ppo_turn (the study), ppo_token, grpo (token-level)."""
    advantage: Literal["gae", "grpo", "rloo"] = "gae"
    """Advantage estimator by registry name: gae (needs the value head), grpo, rloo."""
    epochs: int = 4
    """Passes over each batch of turns (the study: 4)."""
    clip_eps: float = 0.1
    """PPO ratio clip (the study: 0.1)."""
    value_clip_eps: float = 0.2
    """Clip of the value update around the old values (in reward units)."""
    vf_coef: float = 0.5
    """Weight of the value loss in the total loss (shared backbone)."""
    gamma: float = 0.9
    """Discount over turns (the study: 0.9)."""
    lam: float = 0.95
    """GAE lambda (the study: 0.95)."""
    thought_coef: float = 0.5
    """Weight of reasoning tokens in the action log-prob (the study: 0.5)."""
    whiten_advantages: bool = True
    """gae: normalise advantages over the whole batch (all ranks), as the reference PPO does."""
    kl_coef: float = 0.0
    """KL to a reference model (the study: none; > 0 is not supported by the learner yet)."""
    is_clip: float | None = 2.0
    """Truncation C of importance weights pi_old / mu for stale data; null = no correction."""
    temperature: float = 0.2
    """Sampling temperature of the rollouts: log-probs are taken under softmax(logits / T) so
    importance weights compare the same distribution the engine sampled from."""

    def __post_init__(self) -> None:
        check(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        check(0 < self.clip_eps < 1, "clip_eps", f"must be in (0, 1), got {self.clip_eps}")
        check(self.value_clip_eps > 0, "value_clip_eps", "must be > 0")
        check(self.vf_coef >= 0, "vf_coef", "must be >= 0")
        check(0 <= self.gamma <= 1, "gamma", f"must be in [0, 1], got {self.gamma}")
        check(0 <= self.lam <= 1, "lam", f"must be in [0, 1], got {self.lam}")
        check(self.thought_coef >= 0, "thought_coef", "must be >= 0")
        check(self.kl_coef == 0, "kl_coef", "a reference model is not wired yet; use 0")
        check(self.is_clip is None or self.is_clip >= 1, "is_clip", "must be >= 1 or null")
        check(self.temperature > 0, "temperature", "must be > 0")


@dataclass
class LearnerConfig:
    """The training side: DeepSpeed ranks as Ray actors, model, optimizer, schedule, batching."""

    num_ranks: int = 1
    """Number of DeepSpeed ranks (one Ray actor each)."""
    zero_stage: Literal[0, 1, 2, 3] = 0
    """DeepSpeed ZeRO stage."""
    offload_optimizer: bool = False
    """ZeRO-Offload: keep optimizer states on the CPU (stage >= 1; uses DeepSpeed's CPU Adam)."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Training precision of the model weights."""
    autocast_bf16: bool = False
    """Run forward and backward under bf16 autocast while weights and optimizer stay in
    ``dtype`` (mixed precision). ~2.5x faster training on CPUs with AVX512-BF16/AMX; log-probs
    are then bf16-rounded (PPO ratios are unaffected: old log-probs come from the same pass)."""
    critic: Literal["shared", "separate", "none"] = "shared"
    """Value model: an MLP head on the policy's backbone (the study), a separate backbone
    with its own head (twice the memory), or none (GRPO/RLOO need no critic)."""
    value_head_hidden: int = 0
    """Hidden width of the value MLP; 0 = the backbone's hidden size."""
    lr: float = 1e-5
    """Peak learning rate."""
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    """Shape after warmup: constant, cosine decay or linear decay to min_lr_ratio x lr."""
    warmup_steps: int = 0
    """Optimizer steps of linear warmup from 0 to lr."""
    total_steps: int = 0
    """Optimizer steps the decay spans (cosine/linear); 0 = constant after warmup."""
    min_lr_ratio: float = 0.0
    """Floor of the decayed lr as a fraction of lr."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Global gradient-norm clip (0 = off)."""
    micro_batch_size: int = 4
    """Sequences per rank per forward/backward."""
    share_prefixes: bool = True
    """Compute a token prefix once for all rows of a micro-batch that share it: the rows are
    packed as a prefix tree (learner/prefix_tree.py), each row's attention exactly what it
    would be alone, so log-probs, values and gradients equal the unpacked ones up to float
    rounding. Rows are sorted by their tokens before micro-batches are cut, so rows that share
    more land together (a GRPO group's samples, turns of one episode, every prompt's shared
    instructions). Text-only models; image rows train unpacked whatever this says."""
    grad_accum_steps: int = 1
    """Micro-batches accumulated per optimizer step."""
    cpus_per_rank: float = 1.0
    """CPUs reserved for each rank in its placement group bundle."""
    torch_threads: int = 0
    """Intra-op threads of each rank (0 = max(1, int(cpus_per_rank))). More threads than
    reserved CPUs pays off on a small machine when training and generation take turns (strict
    on-policy RL, SFT): the engines are idle while the learner trains."""
    gpus_per_rank: float = 0.0
    """GPUs reserved for each rank (0 on CPU machines; then the backend is gloo)."""
    seed: int = 0
    """Seed of model init and data order on every rank."""
    call_timeout_s: float = 7200.0
    """Longest a call on the ranks (an update, a checkpoint save, an export) may take before
    it counts as hung: the error names the rank and the call. Generous: a large model's PPO
    update on slow hardware takes minutes, not hours."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """The RL update."""

    def __post_init__(self) -> None:
        check(self.num_ranks >= 1, "num_ranks", f"must be >= 1, got {self.num_ranks}")
        check(self.call_timeout_s > 0, "call_timeout_s", f"must be > 0, got {self.call_timeout_s}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.value_head_hidden >= 0, "value_head_hidden", "must be >= 0")
        check(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        check(self.total_steps >= 0, "total_steps", "must be >= 0")
        check(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]")
        check(
            self.lr_schedule == "constant" or self.total_steps > self.warmup_steps,
            "total_steps",
            f"a {self.lr_schedule} schedule needs total_steps > warmup_steps",
        )
        check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        check(self.grad_clip >= 0, "grad_clip", "must be >= 0 (0 = off)")
        check(self.micro_batch_size >= 1, "micro_batch_size", "must be >= 1")
        check(self.grad_accum_steps >= 1, "grad_accum_steps", "must be >= 1")
        check(self.cpus_per_rank > 0, "cpus_per_rank", "must be > 0")
        check(self.torch_threads >= 0, "torch_threads", "must be >= 0 (0 = from cpus_per_rank)")
        check(self.gpus_per_rank >= 0, "gpus_per_rank", "must be >= 0")
        check(
            not self.offload_optimizer or self.zero_stage >= 1,
            "offload_optimizer",
            "needs zero_stage 1, 2 or 3 (ZeRO-Offload partitions optimizer states)",
        )
        check(
            self.critic != "none" or self.ppo.advantage != "gae",
            "critic",
            "ppo.advantage 'gae' needs a value model; use 'shared' or 'separate'",
        )

    @property
    def rows_per_step(self) -> int:
        """Sequences one optimizer step consumes over all ranks."""
        return self.micro_batch_size * self.grad_accum_steps * self.num_ranks
