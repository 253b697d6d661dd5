"""Check that a model folder loads in transformers and in vLLM and that both agree.

Greedy decoding from the same chat prompt must give the same tokens, and vLLM's log-probs of
those tokens must match transformers' (fp32). ``veriray models check NAME`` runs this.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import torch

CHECK_PROMPT = "Cards: K, 5. J, Q and K count as 10. Use each number once to make 15."


def _chat_inputs(path: Path, multimodal: bool) -> tuple[Any, str, Any]:
    from PIL import Image, ImageDraw
    from transformers import AutoProcessor, AutoTokenizer

    if multimodal:
        chat = AutoProcessor.from_pretrained(path)
        image = Image.new("RGB", (336, 336), (20, 110, 50))
        ImageDraw.Draw(image).rectangle((40, 60, 150, 220), fill="white", outline="black")
        content: Any = [{"type": "image"}, {"type": "text", "text": CHECK_PROMPT}]
    else:
        chat = AutoTokenizer.from_pretrained(path)
        image, content = None, CHECK_PROMPT
    prompt = chat.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    return chat, prompt, image


def hf_greedy(path: Path, multimodal: bool, max_new_tokens: int) -> dict[str, Any]:
    """Greedy tokens and their log-probs under transformers (fp32)."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    chat, prompt, image = _chat_inputs(path, multimodal)
    if multimodal:
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
        inputs = chat(text=prompt, images=image, return_tensors="pt")
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        inputs = chat(prompt, return_tensors="pt", add_special_tokens=False)
    model.eval()
    with torch.no_grad():
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
        )
    prompt_len = inputs["input_ids"].shape[1]
    tokens = out.sequences[0, prompt_len:].tolist()
    logprobs = [
        float(torch.log_softmax(score[0].float(), -1)[tok])
        for score, tok in zip(out.scores, tokens)
    ]
    return {"prompt_len": prompt_len, "tokens": tokens, "logprobs": logprobs}


def vllm_greedy(path: Path, multimodal: bool, max_new_tokens: int) -> dict[str, Any]:
    """Greedy tokens and their log-probs under vLLM (fp32), through the rollout engine."""
    from rollout.config import RolloutConfig
    from rollout.engine import GenerationRequest, Sampling, VLLMEngine

    _, prompt, image = _chat_inputs(path, multimodal)

    async def run() -> Any:
        engine = VLLMEngine(path, RolloutConfig(max_model_len=1024, dtype="float32"), multimodal)
        try:
            return await engine.generate(
                GenerationRequest(prompt=prompt, image=image),
                Sampling(max_new_tokens=max_new_tokens, temperature=0.0),
            )
        finally:
            engine.shutdown()

    gen = asyncio.run(run())
    gc.collect()
    return {
        "prompt_len": len(gen.prompt_token_ids),
        "tokens": gen.token_ids,
        "logprobs": gen.logprobs,
    }


def check_model(path: str | Path, multimodal: bool, max_new_tokens: int = 24) -> dict[str, Any]:
    """Compare transformers and vLLM greedy decoding on one prompt."""
    path = Path(path)
    hf = hf_greedy(path, multimodal, max_new_tokens)
    vl = vllm_greedy(path, multimodal, max_new_tokens)
    n = min(len(hf["tokens"]), len(vl["tokens"]))
    diffs = [abs(a - b) for a, b in zip(hf["logprobs"][:n], vl["logprobs"][:n])]
    return {
        "model": str(path),
        "tokens_match": hf["tokens"] == vl["tokens"],
        "prompt_len_match": hf["prompt_len"] == vl["prompt_len"],
        "max_logprob_diff": max(diffs) if diffs else 0.0,
        "hf": hf,
        "vllm": vl,
    }
