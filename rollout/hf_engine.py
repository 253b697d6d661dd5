"""The Hugging Face ``generate`` backend of the engine interface (rollout/engine.py): one
request at a time, the slow and simple fallback (rollout.backend: hf) and a reference the
tests compare vLLM against."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rollout.config import RolloutConfig
from rollout.engine import (
    Generation,
    GenerationRequest,
    Sampling,
    engine_cpu_cores,
    usable_cores,
)


class HFEngine:
    """Hugging Face ``generate``, one request at a time: the slow, simple fallback backend."""

    def __init__(
        self, model_path: str | Path, cfg: RolloutConfig, multimodal: bool, worker_index: int = 0
    ) -> None:
        import torch
        from transformers import (
            AutoModelForCausalLM,
            AutoModelForImageTextToText,
            AutoProcessor,
            AutoTokenizer,
        )

        self.torch = torch
        self.cfg = cfg
        self.multimodal = multimodal
        dtype = torch.bfloat16 if cfg.dtype == "bfloat16" else torch.float32
        # Ray sets CUDA_VISIBLE_DEVICES to the worker's GPU (rollout.gpus_per_worker > 0).
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.type == "cpu":  # Ray sets OMP_NUM_THREADS to the reservation, floored
            torch.set_num_threads(len(engine_cpu_cores(usable_cores(), cfg, worker_index)))
        model_cls = AutoModelForImageTextToText if multimodal else AutoModelForCausalLM
        self.model = model_cls.from_pretrained(model_path, dtype=dtype).to(self.device).eval()
        self.processor = (AutoProcessor if multimodal else AutoTokenizer).from_pretrained(
            model_path
        )
        self.tokenizer = self.processor.tokenizer if multimodal else self.processor
        self._version = 0
        self._lock = asyncio.Lock()

    async def generate(self, request: GenerationRequest, sampling: Sampling) -> Generation:
        async with self._lock:
            return await asyncio.to_thread(self._generate, request, sampling)

    def _generate(self, request: GenerationRequest, sampling: Sampling) -> Generation:
        torch = self.torch
        if self.multimodal and request.image is not None:
            inputs = self.processor(text=request.prompt, images=request.image, return_tensors="pt")
        else:
            inputs = self.tokenizer(request.prompt, return_tensors="pt", add_special_tokens=False)
        # Image inputs (LLaVA: pixel_values; Mllama: also aspect ratios and the cross-attention
        # mask, which generate extends over the response) go in as the model's dtype.
        inputs = {
            k: v.to(self.device, self.model.dtype) if v.is_floating_point() else v.to(self.device)
            for k, v in inputs.items()
        }
        greedy = sampling.temperature == 0
        with torch.no_grad():
            out = self.model.generate(
                **inputs,
                max_new_tokens=sampling.max_new_tokens,
                do_sample=not greedy,
                temperature=None if greedy else sampling.temperature,
                top_p=None if greedy else sampling.top_p,
                # Passed even when off: the model's generation_config may set its own (often
                # top_k=50), and rollouts must sample what the config says.
                top_k=None if greedy else sampling.top_k,
                min_p=None if greedy or not sampling.min_p else sampling.min_p,
                stop_strings=sampling.stop or None,
                tokenizer=self.tokenizer if sampling.stop else None,
                output_logits=True,
                return_dict_in_generate=True,
            )
        prompt_ids = inputs["input_ids"][0].tolist()
        tokens = out.sequences[0, len(prompt_ids) :].tolist()
        # Log-probs of the sampled distribution (after temperature), as the vLLM engine
        # reports them (logprobs_mode="processed_logprobs").
        scale = 1.0 if greedy else sampling.temperature
        logprobs = [
            float(torch.log_softmax(step[0].float() / scale, -1)[tok])
            for step, tok in zip(out.logits, tokens)
        ]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        # Like vLLM, the end-of-turn token stays in token_ids (it is part of the action).
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        cut = min((i for i in (text.find(x) for x in sampling.stop) if i >= 0), default=-1)
        stopped = tokens and tokens[-1] in eos_ids
        finish = "stop" if stopped or cut >= 0 else "length"
        return Generation(
            prompt_token_ids=prompt_ids,
            token_ids=tokens,
            logprobs=logprobs,
            text=text[:cut] if cut >= 0 else text,  # as vLLM: the stop string is not kept
            finish_reason=finish,
            policy_version=self._version,
        )

    async def load_weights(self, version: int, weights_dir: str) -> None:
        """Load a published checkpoint folder (config + safetensors) in place of the model."""
        async with self._lock:
            model = await asyncio.to_thread(
                type(self.model).from_pretrained, weights_dir, dtype=self.model.dtype
            )
            self.model = model.to(self.device).eval()
            self._version = version

    async def sleep(self) -> None:  # HF generate holds no cache between calls
        pass

    async def wake_up(self) -> None:
        pass

    def version(self) -> int:
        return self._version

    def shutdown(self) -> None:
        pass
