"""Config of the DeepSpeed learner group (PPO, SFT, schedule). Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.typed_config import check

# Names registered in learner/losses.py, learner/advantages.py, learner/aggregation.py,
# learner/kl.py and learner/truncation.py. Listed here (not imported) so that this module loads
# without torch; a unit test checks the lists match the registries.
POLICY_LOSS_NAMES = ("ppo_turn", "ppo_token", "grpo", "dr_grpo")
ADVANTAGE_NAMES = ("gae", "grpo", "dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline")
LOSS_AGG_NAMES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")
KL_ESTIMATOR_NAMES = ("k1", "k2", "k3")
TRUNCATION_NAMES = ("keep", "mask", "penalty")


@dataclass
class PPOConfig:
    """The RL update. Defaults are the study's turn-level PPO."""

    policy_loss: Literal["ppo_turn", "ppo_token", "grpo", "dr_grpo"] = "ppo_turn"
    """Policy loss by registry name: ppo_turn (the study: one ratio per turn), ppo_token
    (token-mean), grpo (seq-mean-token-mean), dr_grpo (seq-mean-token-sum: no length
    normalisation)."""
    advantage: Literal[
        "gae", "grpo", "dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline"
    ] = "gae"
    """Advantage estimator by registry name: gae (needs the value head), grpo (group mean and
    std), dr_grpo (group mean, no std division), rloo (leave-one-out mean), reinforce_pp
    (REINFORCE++: returns whitened over the whole batch), reinforce_pp_baseline (group mean,
    then whitened over the whole batch)."""
    loss_agg: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"] | None = None
    """How per-token loss terms are reduced: token-mean (every token of the micro-batch
    counts once), seq-mean-token-mean (every response counts once), seq-mean-token-sum (no
    division by the response length). null = the policy loss's own (see policy_loss;
    ppo_turn's ratio is per turn, so there it applies to the KL and entropy terms only)."""
    epochs: int = 4
    """Passes over each batch of turns (the study: 4)."""
    clip_eps: float = 0.1
    """PPO ratio clip (the study: 0.1); the default of both clip_eps_low and clip_eps_high."""
    clip_eps_low: float | None = None
    """Lower ratio clip: the ratio of a negative-advantage item is kept >= 1 - clip_eps_low.
    null = clip_eps."""
    clip_eps_high: float | None = None
    """Upper ratio clip: the ratio of a positive-advantage item is kept <= 1 + clip_eps_high.
    null = clip_eps. Larger than clip_eps_low is DAPO's clip-higher (e.g. 0.2 / 0.28): it lets
    unlikely tokens with a positive advantage grow, which slows entropy collapse."""
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
    """Weight of the KL to the reference model (the study: none). > 0 keeps a frozen copy of
    the RL stage's initial policy on every learner rank (its memory once more, no optimizer
    state) and scores each batch's responses with it."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    """Per-token estimator of KL(pi || pi_ref) from x = log pi - log pi_ref: k1 = x
    (unbiased, can be negative), k2 = x^2 / 2 (low variance), k3 = exp(-x) + x - 1 (unbiased,
    >= 0; GRPO's). kl_mode reward usually takes k1."""
    kl_mode: Literal["loss", "reward"] = "loss"
    """Where the KL goes: loss (kl_coef x the aggregated per-token KL is added to the policy
    loss, differentiated) or reward (each turn's reward loses kl_coef x its response's summed
    KL under the learner's policy before the advantages are computed)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus: the loss loses entropy_coef x the policy's entropy over
    the response tokens (aggregated like the loss). The entropy is logged
    (learner/entropy) whatever this is; 0 = logged, not trained."""
    dynamic_sampling: bool = False
    """Drop the groups (episodes sharing a group_id) whose episode returns are all equal
    (after the truncated_response handling, before any KL): their group-relative advantages
    are all zero, so they only dilute the batch (DAPO). The RL
    stage then plays more groups to refill the batch (dynamic_sampling_max_refills). Needs
    rl.samples_per_task > 1 (a group of one is never informative). Meant for the group
    baselines (grpo, dr_grpo, rloo, reinforce_pp_baseline)."""
    dynamic_sampling_max_refills: int = 3
    """With dynamic_sampling: how many extra rounds of episodes the RL stage plays at most
    to get the batch back to rl.episodes_per_update informative episodes before it trains on
    what it has."""
    truncated_response: Literal["keep", "mask", "penalty"] = "keep"
    """A response cut by the token limit (the engine's finish_reason "length"): keep (train
    on it like any other), mask (out of the loss: no policy or value gradient; its reward still
    counts in its group's baseline) or penalty (its reward gets truncated_penalty added)."""
    truncated_penalty: float = -1.0
    """With truncated_response penalty: added to the reward of a truncated turn (<= 0)."""
    is_clip: float | None = 2.0
    """Truncation C of importance weights pi_old / mu for stale data; null = no correction."""
    temperature: float = 0.2
    """Sampling temperature of the rollouts: log-probs are taken under softmax(logits / T) so
    importance weights compare the same distribution the engine sampled from."""

    def __post_init__(self) -> None:
        check(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        check(0 < self.clip_eps < 1, "clip_eps", f"must be in (0, 1), got {self.clip_eps}")
        low, high = self.clip_eps_low, self.clip_eps_high
        check(low is None or 0 < low < 1, "clip_eps_low", f"must be in (0, 1) or null, got {low}")
        check(high is None or high > 0, "clip_eps_high", f"must be > 0 or null, got {high}")
        check(self.value_clip_eps > 0, "value_clip_eps", "must be > 0")
        check(self.vf_coef >= 0, "vf_coef", "must be >= 0")
        check(0 <= self.gamma <= 1, "gamma", f"must be in [0, 1], got {self.gamma}")
        check(0 <= self.lam <= 1, "lam", f"must be in [0, 1], got {self.lam}")
        check(self.thought_coef >= 0, "thought_coef", "must be >= 0")
        check(self.kl_coef >= 0, "kl_coef", f"must be >= 0, got {self.kl_coef}")
        check(self.entropy_coef >= 0, "entropy_coef", f"must be >= 0, got {self.entropy_coef}")
        check(
            self.dynamic_sampling_max_refills >= 0,
            "dynamic_sampling_max_refills",
            f"must be >= 0, got {self.dynamic_sampling_max_refills}",
        )
        check(
            self.truncated_penalty <= 0,
            "truncated_penalty",
            f"must be <= 0 (a penalty), got {self.truncated_penalty}",
        )
        check(self.is_clip is None or self.is_clip >= 1, "is_clip", "must be >= 1 or null")
        check(self.temperature > 0, "temperature", "must be > 0")


@dataclass
class LoRAConfig:
    """Low-rank adapters on the policy (peft's LoRA): only they (and the value model) train;
    the engines get the merged weights after every update."""

    enabled: bool = False
    """Train LoRA adapters instead of the full policy, in every stage the learner trains (SFT
    warm start, RL, SFT arm; each starts fresh adapters on the weights it starts from).
    Exports (weight sync, HF folders) hold the merged weights; a checkpoint also keeps the
    adapter alone (adapter/, peft's layout). A separate critic still trains whole."""
    r: int = 8
    """Rank of each adapter (B is out x r, A is r x in)."""
    alpha: float = 16.0
    """Scale numerator: an adapter adds B A x alpha / r to its layer's weight."""
    dropout: float = 0.0
    """Dropout on the adapters' input while training. > 0 makes each PPO forward noisy (the
    ratio to the old policy then varies from pass to pass); 0 keeps them exact."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    """Names (last part) of the linear layers that get an adapter; the default is every
    attention projection of Llama-style models. Add gate_proj, up_proj, down_proj for the MLP."""

    def __post_init__(self) -> None:
        check(self.r >= 1, "r", f"must be >= 1, got {self.r}")
        check(self.alpha > 0, "alpha", f"must be > 0, got {self.alpha}")
        check(0 <= self.dropout < 1, "dropout", f"must be in [0, 1), got {self.dropout}")
        check(bool(self.target_modules), "target_modules", "must name at least one layer")


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
    gradient_checkpointing: bool = False
    """Keep only each decoder layer's input during the forward and recompute the rest in the
    backward (policy and separate critic): activation memory drops from every layer's
    intermediates to one layer's, for about a third more compute. Needed for long V-IRL
    conversations with large models. With share_prefixes the prefix is still computed once,
    but attention uses the ancestor mask instead of skipping the masked pairs."""
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
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    """LoRA adapters on the policy instead of full fine-tuning (off by default)."""

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
