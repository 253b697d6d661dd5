"""PolicyWithValue on the tiny LM and VLM: padded batches give the unpadded log-probs, LLaVA
takes pre-expanded image ids, and the exported HF folder is the plain policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from learner.assets import prepare
from learner.batching import TrainRow, collate
from learner.checkpoint import save_hf_policy
from learner.models import PolicyWithValue
from learner.ppo import forward_logprobs
from learner.sft import as_train_row


def _reference_logprobs(policy, ids: list[int], n_resp: int, **extra) -> torch.Tensor:
    """log p of the last n_resp tokens from one unpadded full forward."""
    x = torch.tensor([ids])
    logits = policy(input_ids=x, **extra).logits[0].float()
    logp = logits[:-1].log_softmax(-1).gather(-1, x[0, 1:, None]).squeeze(-1)
    return logp[-n_resp:]


@pytest.fixture(scope="module")
def lm_path() -> Path:
    return prepare("tiny-lm")


@pytest.mark.parametrize("critic", ["shared", "separate"])
def test_padded_batch_matches_unpadded_forward(lm_path: Path, critic: str) -> None:
    torch.manual_seed(0)
    model = PolicyWithValue.from_pretrained(lm_path, critic=critic).eval()
    rows = [
        TrainRow([5, 6, 7, 8, 9], [10, 11], [True, True], [False, False]),
        TrainRow([5, 6], [12, 13, 14, 15], [True] * 4, [False] * 4),
    ]
    batch = collate(rows, pad_id=0)
    with torch.no_grad():
        logp, values = forward_logprobs(model, batch)
        for i, r in enumerate(rows):
            ref = _reference_logprobs(
                model.policy, r.prompt_ids + r.response_ids, len(r.response_ids)
            )
            assert torch.allclose(logp[i, -len(r.response_ids) :], ref, atol=1e-5)
        # the value reads the last prompt token: changing the response leaves it unchanged
        alone = collate([TrainRow([5, 6, 7, 8, 9], [99], [True], [False])], pad_id=0)
        _, v_alone = forward_logprobs(model, alone)
    assert values.shape == (2,) and values.dtype == torch.float32
    assert torch.allclose(values[0], v_alone[0], atol=1e-5)
    assert (model.critic is None) == (critic == "shared")


def test_bf16_forward_and_backward(lm_path: Path) -> None:
    model = PolicyWithValue.from_pretrained(lm_path, dtype=torch.bfloat16)
    batch = collate([TrainRow([5, 6, 7], [8, 9], [True, True], [False, False])], pad_id=0)
    logp, values = forward_logprobs(model, batch)
    (logp.sum() + values.sum()).backward()
    assert model.value_head.fc.weight.grad is not None
    assert model.policy.get_input_embeddings().weight.grad.dtype == torch.bfloat16


def test_llava_takes_pre_expanded_image_ids_and_pixels() -> None:
    from transformers import AutoProcessor

    path = prepare("tiny-vlm")
    model = PolicyWithValue.from_pretrained(path).eval()
    proc = AutoProcessor.from_pretrained(path)
    image = Image.new("RGB", (80, 60), (20, 120, 40))
    text = proc.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "cards?"}]}],
        tokenize=False,
        add_generation_prompt=True,
    )
    enc = proc(text=[text], images=[image], return_tensors="pt")
    prompt = enc["input_ids"][0].tolist()  # image token already expanded, as vLLM gives it
    assert prompt.count(model.policy.config.image_token_index) > 1
    row = TrainRow(prompt, [40, 41, 42], [True] * 3, [False] * 3)
    batch = collate([row, TrainRow([5, 6], [7], [True], [False])], 0, enc["pixel_values"])
    with torch.no_grad():
        logp, values = forward_logprobs(model, batch)
        ref = _reference_logprobs(
            model.policy, [*prompt, 40, 41, 42], 3, pixel_values=enc["pixel_values"]
        )
        no_image = _reference_logprobs(
            model.policy,
            [*prompt, 40, 41, 42],
            3,
            pixel_values=torch.zeros_like(enc["pixel_values"]),
        )
    assert torch.allclose(logp[0], ref, atol=1e-5)
    assert not torch.allclose(ref, no_image, atol=1e-4)  # the pixels matter
    assert values.shape == (2,)


def _engine_logprobs(policy, prompt: list[int], response: list[int], pixel_values) -> torch.Tensor:
    """log p of ``response`` as a generating engine computes it: the image merged into the
    prompt's placeholders in the prefill, then each response token fed as text (a KV cache
    and no pixels), whatever its id."""
    with torch.no_grad():
        out = policy(input_ids=torch.tensor([prompt]), pixel_values=pixel_values, use_cache=True)
        steps = [out.logits[0, -1]]
        cache = out.past_key_values
        for tok in response[:-1]:
            out = policy(input_ids=torch.tensor([[tok]]), past_key_values=cache, use_cache=True)
            steps.append(out.logits[0, -1])
            cache = out.past_key_values
    logp = torch.stack(steps).float().log_softmax(-1)
    return logp.gather(-1, torch.tensor(response)[:, None]).squeeze(-1)


@pytest.mark.parametrize("critic", ["shared", "separate"])
def test_llava_image_token_sampled_in_a_response_is_text(critic: str) -> None:
    """The tiny VLM's <image> (id 3 of 635) can be sampled: a response holding it is text to
    the engine. The learner used to hand every image id to the HF merge, which then counted
    more placeholders than image features ("Image features and image tokens do not match")
    and failed the PPO update on such a batch."""
    from transformers import AutoProcessor

    path = prepare("tiny-vlm")
    torch.manual_seed(0)
    model = PolicyWithValue.from_pretrained(path, critic=critic).eval()
    proc = AutoProcessor.from_pretrained(path)
    image_id = model.policy.config.image_token_index
    images = [Image.new("RGB", (96, 96), c) for c in ((20, 120, 40), (200, 30, 30))]
    rows, pixels = [], []
    for k, image in enumerate(images):
        text = proc.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "cards?"}]}],
            tokenize=False,
            add_generation_prompt=True,
        )
        enc = proc(text=[text], images=[image], return_tensors="pt")
        prompt = enc["input_ids"][0].tolist()
        # Row 0 sampled the image token mid-response, row 1 (shorter) at its first token.
        response = [40, image_id, 41, image_id, 42] if k == 0 else [image_id, 43]
        rows.append(TrainRow(prompt, response, [True] * len(response), [False] * len(response)))
        pixels.append(enc["pixel_values"])
    text_row = TrainRow([5, 6], [7, image_id], [True, True], [False, False])
    images_in = [{"pixel_values": pixels[0]}, None, {"pixel_values": pixels[1]}]
    batch = collate([rows[0], text_row, rows[1]], 0, images=images_in)
    with torch.no_grad():
        logp, values = forward_logprobs(model, batch)
    for i, (row, px) in zip((0, 2), zip(rows, pixels, strict=True)):
        want = _engine_logprobs(model.policy, row.prompt_ids, row.response_ids, px)
        t = len(row.response_ids)
        assert torch.allclose(logp[i, logp.shape[1] - t :], want, atol=1e-4)
    assert values is not None and values.shape == (3,)
    # An SFT row holds its whole conversation, image placeholders included, in response_ids.
    prompt = rows[0].prompt_ids
    sft_row = as_train_row([*prompt, 40, 41], [False] * len(prompt) + [True, True])
    with torch.no_grad():
        sft_logp, _ = forward_logprobs(
            model, collate([sft_row], 0, images=[{"pixel_values": pixels[0]}]), with_values=False
        )
    want = _engine_logprobs(model.policy, prompt, [40, 41], pixels[0])
    assert torch.allclose(sft_logp[0, -2:], want, atol=1e-4)
    # A prompt whose image tokens do not match its images is still refused.
    prompt = list(rows[0].prompt_ids)
    prompt.remove(image_id)  # one placeholder short of the image's features
    short = TrainRow(prompt, [40], [True], [False])
    bad = collate([short], 0, images=[{"pixel_values": pixels[0]}])
    with pytest.raises(ValueError, match="image tokens"):
        forward_logprobs(model, bad)


def test_export_is_the_plain_policy_with_an_explicit_tied_head(lm_path: Path, tmp_path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = PolicyWithValue.from_pretrained(lm_path)
    with torch.no_grad():
        model.policy.get_input_embeddings().weight.mul_(1.5)  # differ from the asset
    files = save_hf_policy(model.policy, tmp_path / "hf", AutoTokenizer.from_pretrained(lm_path))
    with safe_open(files[0], framework="pt") as f:
        keys = set(f.keys())
        assert torch.equal(
            f.get_tensor("lm_head.weight"), f.get_tensor("model.embed_tokens.weight")
        )
    assert not any(k.startswith(("value_head", "critic")) for k in keys)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    x = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, model.policy(x).logits)
    assert (tmp_path / "hf" / "tokenizer.json").is_file()
    modes = {f.name: f.stat().st_mode & 0o777 for f in (tmp_path / "hf").iterdir()}
    assert set(modes.values()) == {0o600}, modes  # weights and configs are private


def test_llava_export_uses_the_vllm_key_layout(tmp_path) -> None:
    model = PolicyWithValue.from_pretrained(prepare("tiny-vlm"), critic="none")
    files = save_hf_policy(model.policy, tmp_path / "hf")
    with safe_open(files[0], framework="pt") as f:
        keys = list(f.keys())
    vision = [k for k in keys if k.startswith("vision_tower.")]
    assert vision and all(k.startswith("vision_tower.vision_model.") for k in vision)
    assert "language_model.lm_head.weight" in keys


def test_autocast_bf16_keeps_fp32_weights_and_approximates_fp32(lm_path: Path) -> None:
    torch.manual_seed(0)
    model = PolicyWithValue.from_pretrained(lm_path)
    batch = collate([TrainRow([5, 6, 7, 8], [9, 10, 11], [True] * 3, [False] * 3)], pad_id=0)
    exact, v_exact = forward_logprobs(model, batch)
    model.autocast_bf16 = True
    mixed, v_mixed = forward_logprobs(model, batch)
    assert mixed.dtype == torch.float32 and v_mixed.dtype == torch.float32
    assert not torch.equal(mixed, exact)  # the matmuls really ran in bf16
    # bf16 keeps ~3 significant digits: log-probs within 2% relative, values close.
    assert torch.allclose(mixed, exact, rtol=2e-2, atol=0)
    assert torch.allclose(v_mixed, v_exact, atol=5e-2)
    (mixed.sum() + v_mixed.sum()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(p.dtype == torch.float32 for p in model.parameters())
    assert all(g.dtype == torch.float32 for g in grads)
