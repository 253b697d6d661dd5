"""Generation engines behind one small interface: vLLM (CPU or CUDA) and HF generate.

``generate(requests, sampling) -> list[Generation]``: each request is a chat-templated prompt
text plus an optional image; each result carries the prompt token ids the engine actually
used (image placeholders expanded), the response token ids and their behaviour log-probs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rollout.config import RolloutConfig


@dataclass
class GenerationRequest:
    prompt: str
    """The full conversation rendered with the chat template, ending in the assistant header."""
    image: Any = None
    """A PIL image for vision-language models (the prompt holds its placeholder), or None."""


@dataclass
class Generation:
    prompt_token_ids: list[int]
    """Prompt tokens as the engine saw them (image placeholders expanded)."""
    token_ids: list[int]
    """Response tokens, (T,)."""
    logprobs: list[float]
    """Behaviour log-prob of each response token under the serving weights, (T,)."""
    text: str
    """Decoded response."""
    finish_reason: str = ""
    """"stop" (end of turn) or "length" (hit max_new_tokens)."""


@dataclass
class Sampling:
    max_new_tokens: int = 256
    temperature: float = 0.2
    top_p: float = 1.0
    stop_token_ids: list[int] = field(default_factory=list)

    @classmethod
    def from_config(cls, cfg: RolloutConfig) -> Sampling:
        return cls(cfg.max_new_tokens, cfg.temperature, cfg.top_p)


class Engine(Protocol):
    def generate(
        self, requests: list[GenerationRequest], sampling: Sampling
    ) -> list[Generation]: ...

    def version(self) -> int: ...


def set_vllm_cpu_env(cfg: RolloutConfig) -> None:
    """vLLM-on-CPU settings that must be in the environment before vllm starts."""
    # In-process engine core: starts in ~2 s and keeps the engine inside this actor.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, round(cfg.kv_cache_gib))))
    os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


class VLLMEngine:
    """vLLM's offline engine (continuous batching, prefix caching) on CPU or GPU."""

    def __init__(self, model_path: str | Path, cfg: RolloutConfig, multimodal: bool) -> None:
        set_vllm_cpu_env(cfg)
        from rollout.vllm_compat import register

        register()  # also applied by vLLM itself through the plugin entry point
        from vllm import LLM

        kwargs: dict[str, Any] = {}
        if multimodal:
            kwargs["limit_mm_per_prompt"] = {"image": 1}
        self.llm = LLM(
            model=str(model_path),
            dtype=cfg.dtype,
            enforce_eager=cfg.enforce_eager,
            max_model_len=cfg.max_model_len,
            seed=cfg.seed,
            tensor_parallel_size=cfg.tensor_parallel_size,
            enable_prefix_caching=True,
            **kwargs,
        )
        self._version = 0

    def generate(self, requests: list[GenerationRequest], sampling: Sampling) -> list[Generation]:
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            # No per-request seed: on CPU a seeded request whose prefill is chunked fails in
            # vLLM 0.32 ("CPU Generator does not use offset"). The engine seed still makes a
            # run reproducible.
            logprobs=0,
            stop_token_ids=sampling.stop_token_ids or None,
        )
        prompts = [
            {"prompt": r.prompt, "multi_modal_data": {"image": r.image}}
            if r.image is not None
            else {"prompt": r.prompt}
            for r in requests
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for out in outputs:
            comp = out.outputs[0]
            logprobs = [step[tok].logprob for tok, step in zip(comp.token_ids, comp.logprobs or [])]
            results.append(
                Generation(
                    prompt_token_ids=list(out.prompt_token_ids or []),
                    token_ids=list(comp.token_ids),
                    logprobs=logprobs,
                    text=comp.text,
                    finish_reason=comp.finish_reason or "",
                )
            )
        return results

    def version(self) -> int:
        return self._version
