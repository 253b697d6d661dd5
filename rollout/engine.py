"""Generation engines behind one small async interface: vLLM (CPU or CUDA) and HF generate.

``await engine.generate(request, sampling) -> Generation``: a request is a chat-templated prompt
text plus an optional image; the result carries the prompt token ids the engine actually used
(image placeholders expanded), the response token ids and their behaviour log-probs. Many
episodes await ``generate`` at once; vLLM's async engine batches them continuously (and its
prefix cache makes a growing conversation cheap). ``load_weights(version, path)`` swaps in new
weights in place and the engine then reports that version.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rollout.config import RolloutConfig
from rollout.weight_receiver import WORKER_EXTENSION


@dataclass
class GenerationRequest:
    prompt: str
    """The full conversation rendered with the chat template, ending in the assistant header."""
    image: Any = None
    """A PIL image for vision-language models (the prompt holds its placeholder), or None."""


@dataclass
class Generation:
    prompt_token_ids: list[int]
    """Prompt tokens as the engine saw them (image placeholders expanded), (P,)."""
    token_ids: list[int]
    """Response tokens, (T,)."""
    logprobs: list[float]
    """Behaviour log-prob of each response token under the serving weights, (T,)."""
    text: str
    """Decoded response (special tokens skipped)."""
    finish_reason: str = ""
    """"stop" (end of turn) or "length" (hit max_new_tokens)."""
    policy_version: int = 0
    """Version of the weights that produced it."""
    cached_prompt_tokens: int = 0
    """Prompt tokens served by the engine's prefix cache (vLLM's own count), not computed."""


@dataclass
class Sampling:
    max_new_tokens: int = 256
    temperature: float = 0.2
    top_p: float = 1.0
    stop_token_ids: list[int] = field(default_factory=list)
    top_k: int = 0
    """0 = off."""
    min_p: float = 0.0
    """0 = off."""
    stop: list[str] = field(default_factory=list)
    """Stop strings; the text ends before them."""

    @classmethod
    def from_config(cls, cfg: RolloutConfig) -> Sampling:
        return cls(
            cfg.max_new_tokens,
            cfg.temperature,
            cfg.top_p,
            top_k=cfg.top_k,
            min_p=cfg.min_p,
            stop=list(cfg.stop),
        )


class Engine(Protocol):
    async def generate(self, request: GenerationRequest, sampling: Sampling) -> Generation: ...

    async def load_weights(self, version: int, weights_dir: str) -> None: ...

    def version(self) -> int: ...

    async def sleep(self) -> None: ...

    async def wake_up(self) -> None: ...

    def shutdown(self) -> None: ...


def engine_cpu_cores(usable: list[int], cfg: RolloutConfig, worker_index: int) -> list[int]:
    """The cores rollout worker ``worker_index``'s CPU engine runs its threads on.

    ``cfg.cpu_cores`` of them (0: an even share of ``usable`` over ``cfg.num_workers``), the
    worker's own block of consecutive usable cores, wrapping round when workers outnumber
    blocks (a replacement worker gets a new index and so may share a block).
    """
    if not usable:
        raise ValueError("engine_cpu_cores: this process may run on no core (empty affinity)")
    cores = sorted(usable)
    n = min(len(cores), cfg.cpu_cores or max(1, len(cores) // cfg.num_workers))
    start = (worker_index * n) % len(cores)
    return [cores[(start + i) % len(cores)] for i in range(n)]


def usable_cores() -> list[int]:
    """Cores this process may run on (its affinity; every core where that is unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def set_vllm_cpu_env(cfg: RolloutConfig, worker_index: int = 0) -> None:
    """vLLM-on-CPU settings that must be in the environment before vllm starts."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, round(cfg.kv_cache_gib))))
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    if cfg.gpus_per_worker == 0:
        # vLLM-cpu 0.32 on torch 2.13 writes AOT compile artifacts it cannot load again
        # ("'function' object has no attribute 'finalize_loading'"), so a compiled engine
        # recompiled at every start (~70 s for SmolLM2). Its older inductor cache loads: ~28 s.
        os.environ.setdefault("VLLM_USE_AOT_COMPILE", "0")
        # vLLM-cpu binds one OpenMP thread per listed core. Its "auto" default holds one core
        # back for the scheduler process and puts every engine of a node on the same cores.
        cores = engine_cpu_cores(usable_cores(), cfg, worker_index)
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, cores))


def engine_start_env(cfg: RolloutConfig, environ: dict[str, str]) -> dict[str, str]:
    """Environment overrides for the moment a vLLM engine starts (its processes inherit them).

    A CPU engine without tensor parallelism runs its model inside vLLM's engine-core process
    instead of a separate worker process: vLLM-cpu switches its executor to "mp" only while
    VLLM_ENABLE_V1_MULTIPROCESSING is "1". One process fewer to spawn and import is 7-13 s off
    every engine start here, with the same tokens/s (measured 2026-11-27). The frontend still
    talks to the engine core over ZeroMQ (AsyncLLM always does), so nothing runs in the caller's
    process. OMP_NUM_THREADS must then name the engine's core count: vLLM otherwise cuts the
    engine-core process's torch threads to 1. A value the user set is left alone.
    """
    if cfg.gpus_per_worker > 0 or cfg.tensor_parallel_size > 1:
        return {}
    if "VLLM_ENABLE_V1_MULTIPROCESSING" in environ:
        return {}
    bound = environ.get("VLLM_CPU_OMP_THREADS_BIND", "")
    threads = len([c for c in bound.split(",") if c.strip()]) if bound else 0
    if threads == 0:
        return {}
    return {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": str(threads)}


@contextlib.contextmanager
def scoped_env(overrides: dict[str, str]) -> Iterator[None]:
    """Set ``overrides`` in os.environ for the block, then restore what was there."""
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _DropInProcessSeedWarning(logging.Filter):
    """vLLM warns that an in-process engine core reseeds the caller's RNGs whenever
    VLLM_ENABLE_V1_MULTIPROCESSING is 0; AsyncLLM's engine core is its own process, so the
    warning does not apply to these engines and would only mislead a reader of the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "global random seed is set" not in record.getMessage()


_SEED_WARNING_FILTER = _DropInProcessSeedWarning()


def vllm_engine_kwargs(
    model_path: str | Path, cfg: RolloutConfig, multimodal: bool
) -> dict[str, object]:
    """What the rollout config hands to vLLM's AsyncEngineArgs (a pure function: tested
    without vLLM)."""
    kwargs: dict[str, object] = {
        "model": str(model_path),
        "dtype": cfg.dtype,
        "enforce_eager": cfg.enforce_eager,
        "max_model_len": cfg.max_model_len,
        "seed": cfg.seed,
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "enable_prefix_caching": True,
        "limit_mm_per_prompt": {"image": 1} if multimodal else None,
        "disable_log_stats": True,
        # Behaviour log-probs of the distribution actually sampled (after temperature),
        # which is what the learner's importance correction compares against.
        "logprobs_mode": "processed_logprobs",
        "worker_extension_cls": WORKER_EXTENSION if cfg.weight_sync == "nccl" else "",
    }
    if cfg.max_num_seqs is not None:
        kwargs["max_num_seqs"] = cfg.max_num_seqs
    if cfg.gpus_per_worker > 0:
        kwargs["gpu_memory_utilization"] = cfg.gpu_memory_utilization
        kwargs["enable_sleep_mode"] = cfg.enable_sleep_mode
    if cfg.tensor_parallel_size > 1:
        # Inside a placement group vLLM picks its Ray executor, which wants one bundle per GPU;
        # the worker's actor already holds all of its GPUs, so the TP ranks are local processes.
        kwargs["distributed_executor_backend"] = "mp"
    return kwargs


def make_engine(
    model_path: str | Path, cfg: RolloutConfig, multimodal: bool, worker_index: int = 0
) -> Engine:
    if cfg.backend == "hf":
        from rollout.hf_engine import HFEngine  # imports this module's types

        return HFEngine(model_path, cfg, multimodal, worker_index)
    return VLLMEngine(model_path, cfg, multimodal, worker_index)


class VLLMEngine:
    """vLLM's async engine (continuous batching, prefix caching) on CPU or GPU."""

    def __init__(
        self, model_path: str | Path, cfg: RolloutConfig, multimodal: bool, worker_index: int = 0
    ) -> None:
        set_vllm_cpu_env(cfg, worker_index)
        from rollout.vllm_compat import register

        register()  # vLLM applies it in its own processes through the plugin entry point
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(**vllm_engine_kwargs(model_path, cfg, multimodal))
        logging.getLogger("vllm.engine.arg_utils").addFilter(_SEED_WARNING_FILTER)
        with scoped_env(engine_start_env(cfg, dict(os.environ))):
            self.engine = AsyncLLM.from_engine_args(args)
        self.multimodal = multimodal
        self._version = 0
        self._ids = itertools.count()

    async def generate(self, request: GenerationRequest, sampling: Sampling) -> Generation:
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k or -1,  # vLLM: -1 = every token
            min_p=sampling.min_p,
            stop=sampling.stop or None,
            # No per-request seed: on CPU a seeded request whose prefill is chunked fails in
            # vLLM 0.32 ("CPU Generator does not use offset"); the engine seed still applies.
            logprobs=0,
            stop_token_ids=sampling.stop_token_ids or None,
        )
        prompt: dict[str, Any] = {"prompt": request.prompt}
        if request.image is not None:
            prompt["multi_modal_data"] = {"image": request.image}
        version = self._version
        final = None
        async for out in self.engine.generate(prompt, params, request_id=f"r{next(self._ids)}"):
            final = out
        assert final is not None
        comp = final.outputs[0]
        logprobs = [step[tok].logprob for tok, step in zip(comp.token_ids, comp.logprobs or [])]
        return Generation(
            prompt_token_ids=list(final.prompt_token_ids or []),
            token_ids=list(comp.token_ids),
            logprobs=logprobs,
            text=comp.text,
            finish_reason=comp.finish_reason or "",
            policy_version=version,
            cached_prompt_tokens=int(final.num_cached_tokens or 0),
        )

    async def load_weights(self, version: int, weights_dir: str) -> None:
        """Reload weights in place from a folder of safetensors (e.g. in /dev/shm).

        In-flight requests finish on whichever weights they meet; the version is bumped after
        the reload so no response is tagged newer than the weights that started it.
        """
        await self.engine.collective_rpc("reload_weights", kwargs={"weights_path": weights_dir})
        # Cached prefixes were computed with the old weights.
        await self.engine.reset_prefix_cache()
        if self.multimodal:
            # So were the image encodings. Drop them in the scheduler and the model runner
            # together (the reload empties the runner's alone, and the scheduler then asks
            # for an encoding it no longer has: "Encoder cache miss"), and the front end's
            # record of the images the engine holds, so known images are sent again.
            await self.engine.reset_encoder_cache()
            await self.engine.reset_mm_cache()
        self._version = version

    async def nccl_group_init(self, addr: str, port: int, rank_offset: int, world: int) -> None:
        await self.engine.collective_rpc(
            "init_weight_update_group", args=(addr, port, rank_offset, world)
        )

    async def nccl_receive(self, version: int, specs: list[tuple[str, str, list[int]]]) -> None:
        await self.engine.collective_rpc("receive_weights", args=(specs,))
        await self.engine.reset_prefix_cache()
        self._version = version

    async def sleep(self) -> None:
        """Free the GPU memory for a colocated learner: level 1 keeps the weights in CPU
        memory and drops the KV cache (rollout.enable_sleep_mode)."""
        await self.engine.sleep(level=1)

    async def wake_up(self) -> None:
        await self.engine.wake_up()

    def version(self) -> int:
        return self._version

    def shutdown(self) -> None:
        self.engine.shutdown()
