"""Llama-3.2-Vision (Mllama) on image rows, as configs/paper/gp-vl.yaml and virl-vl.yaml use it.

Mllama reads an image through cross-attention: the prompt holds ONE ``<|image|>`` token, and
the forward needs, next to pixel_values (B, I, tiles, 3, H, W), aspect_ratio_ids (B, I),
aspect_ratio_mask (B, I, tiles) and a cross_attention_mask (B, L, I, tiles) aligned with the
left-padded ids. On a tiny random Mllama built offline (tests/unit/learner/tiny_mllama.py) these
tests check: a padded batch of image rows with different tile counts gives each row's unpadded
log-probs (and a batch mixing in a text row is refused); an SFT step on image rows trains the
vision tower, and a separate critic sees the image too; the HF engine's behaviour log-probs for
an image prompt are what the learner computes for the same tokens, also after a weight reload.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from learner.batching import TrainRow, collate
from learner.checkpoint import save_hf_policy
from learner.models import PolicyWithValue, rows_image_inputs
from learner.ppo import forward_logprobs, sft_loss
from rollout.config import RolloutConfig
from rollout.engine import GenerationRequest, Sampling
from rollout.hf_engine import HFEngine
from rollout.images import ImageStore
from tests.unit.learner.tiny_mllama import build_tiny_mllama

TEMPERATURE = 0.7
WIDE = (90, 40)  # two tiles
SQUARE = (40, 40)  # one tile


@pytest.fixture(scope="module")
def mllama_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_mllama(tmp_path_factory.mktemp("tiny-mllama"))


@pytest.fixture(scope="module")
def processor(mllama_path: Path) -> Any:
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(mllama_path)


def _image(size: tuple[int, int], seed: int) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=g, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}


def _prompt(processor: Any, text: str) -> str:
    return processor.apply_chat_template([_user(text)], tokenize=False, add_generation_prompt=True)


def _encode(processor: Any, prompt: str, image: Image.Image) -> dict[str, torch.Tensor]:
    """The prompt and image as the HF engine encodes them."""
    return processor(text=prompt, images=image, return_tensors="pt")


def _reference_logprobs(model: Any, enc: dict[str, torch.Tensor], response: list[int]) -> Any:
    """Log-probs of ``response`` after the encoded prompt, one unpadded row, with the
    cross-attention mask extended over the response the way HF generate extends it."""
    x = torch.cat([enc["input_ids"][0], torch.tensor(response)])[None]
    mask = enc["cross_attention_mask"]
    mask = torch.cat([mask, mask[:, -1:].expand(-1, len(response), -1, -1)], dim=1)
    images = {k: enc[k] for k in ("pixel_values", "aspect_ratio_ids", "aspect_ratio_mask")}
    logits = model(input_ids=x, cross_attention_mask=mask, **images).logits
    full = logits[0, :-1].log_softmax(-1)
    return full.gather(-1, x[0, 1:, None]).squeeze(-1)[-len(response) :]


def test_padded_image_rows_give_each_rows_unpadded_log_probs(
    mllama_path: Path, processor: Any, tmp_path: Path
) -> None:
    model = PolicyWithValue.from_pretrained(mllama_path).eval()
    store = ImageStore(tmp_path / "images")
    cases = [  # (prompt text, image, response): lengths and tile counts differ
        ("Which cards?", _image(WIDE, 0), [10, 11, 12]),
        ("Cards on a green table. Name them, then make 24.", _image(SQUARE, 1), [13, 14]),
    ]
    rows, encs = [], []
    for text, image, response in cases:
        enc = _encode(processor, _prompt(processor, text), image)
        prompt = enc["input_ids"][0].tolist()
        assert prompt.count(processor.image_token_id) == 1  # not expanded, unlike LLaVA
        n = len(response)
        ref = store.put(np.asarray(image))
        rows.append(TrainRow(prompt, response, [True] * n, [False] * n, image_ref=ref))
        encs.append(enc)
    assert encs[0]["aspect_ratio_mask"].sum() == 2 and encs[1]["aspect_ratio_mask"].sum() == 1
    batch = collate(rows, pad_id=0, images=rows_image_inputs(processor, rows, store.folder))
    assert batch.pixel_values is not None and batch.pixel_values.shape[:3] == (2, 1, 2)
    assert batch.image_inputs["cross_attention_mask"].shape[:2] == batch.input_ids.shape
    with torch.no_grad():
        logp, values = forward_logprobs(model, batch)
        for i, (enc, (_, _, response)) in enumerate(zip(encs, cases, strict=True)):
            ref = _reference_logprobs(model.policy, enc, response)
            assert torch.allclose(logp[i, -len(response) :], ref, atol=1e-5)
        blank = dict(encs[0], pixel_values=torch.zeros_like(encs[0]["pixel_values"]))
        no_image = _reference_logprobs(model.policy, blank, cases[0][2])
    assert not torch.allclose(logp[0, -3:], no_image, atol=1e-4)  # the pixels matter
    assert values is not None and torch.isfinite(values).all()

    # Mllama runs its cross-attention for every row or none: a text row cannot join.
    text_row = TrainRow([5, 6, 7], [15, 16], [True] * 2, [False] * 2)
    mixed = [*rows, text_row]
    with pytest.raises(ValueError, match="mixes image and text rows"):
        collate(mixed, pad_id=0, images=rows_image_inputs(processor, mixed, store.folder))


def _sft_rows(mllama_path: Path, store: ImageStore, tmp_path: Path) -> list[TrainRow]:
    from learner.sft import load_sft_rows
    from learner.sft_data import write_sft_parquet

    examples = []
    for i, (question, answer) in enumerate(
        [("Which cards?", '{"cards": ["3", "8"]}'), ("Make 24.", '{"formula": "3 * 8"}')]
    ):
        image = _image(WIDE if i == 0 else SQUARE, i)
        ref = store.put(np.asarray(image))
        messages = [_user(question), {"role": "assistant", "content": answer}]
        examples.append(
            {
                "messages": json.dumps(messages),
                "image_ref": ref,
                "task_family": "generalpoints",
                "task_config": "{}",
                "task_state": "{}",
            }
        )
    path = tmp_path / "sft.parquet"
    write_sft_parquet(examples, path)
    return load_sft_rows(path, mllama_path)


def test_sft_step_on_image_rows_trains_the_vision_tower(
    mllama_path: Path, processor: Any, tmp_path: Path
) -> None:
    store = ImageStore(tmp_path / "images")
    rows = _sft_rows(mllama_path, store, tmp_path)
    for r in rows:
        assert (r.prompt_ids + r.response_ids).count(processor.image_token_id) == 1
        assert r.image_ref and 0 < sum(r.answer_mask) < len(r.response_ids)
    batch = collate(rows, pad_id=0, images=rows_image_inputs(processor, rows, store.folder))
    model = PolicyWithValue.from_pretrained(mllama_path).train()
    loss, _ = sft_loss(model, batch)
    loss.backward()
    assert torch.isfinite(loss)
    vision = {n: p for n, p in model.policy.named_parameters() if "vision_model" in n}
    grads = [p.grad for p in vision.values()]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    before = {n: p.detach().clone() for n, p in vision.items()}
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert any(not torch.equal(before[n], p) for n, p in vision.items())

    # A separate critic reads the same image inputs.
    critic = PolicyWithValue.from_pretrained(mllama_path, critic="separate").eval()
    with torch.no_grad():
        _, values = forward_logprobs(critic, batch)
        blank = collate(rows, pad_id=0, images=rows_image_inputs(processor, rows, store.folder))
        blank.pixel_values = torch.zeros_like(blank.pixel_values)
        _, blank_values = forward_logprobs(critic, blank)
    assert values is not None and torch.isfinite(values).all()
    assert not torch.equal(values, blank_values)


def test_hf_engine_image_log_probs_match_the_learner(
    mllama_path: Path, processor: Any, tmp_path: Path
) -> None:
    cfg = RolloutConfig(backend="hf", max_model_len=512, temperature=TEMPERATURE)
    engine = HFEngine(mllama_path, cfg, multimodal=True)
    assert type(engine.model).__name__ == "MllamaForConditionalGeneration"
    image = _image(WIDE, 3)
    request = GenerationRequest(_prompt(processor, "Which cards? Make 24."), image=image)
    torch.manual_seed(1)
    gen = asyncio.run(engine.generate(request, Sampling(max_new_tokens=8, temperature=TEMPERATURE)))
    assert len(gen.token_ids) == len(gen.logprobs) > 0
    assert gen.prompt_token_ids.count(processor.image_token_id) == 1

    store = ImageStore(tmp_path / "images")
    ref = store.put(np.asarray(image))
    n = len(gen.token_ids)
    row = TrainRow(gen.prompt_token_ids, gen.token_ids, [True] * n, [False] * n, image_ref=ref)
    other = TrainRow([5, 6], [7], [True], [False], image_ref=ref)  # pads the image row
    learner = PolicyWithValue.from_pretrained(mllama_path).eval()
    rows = [row, other]
    batch = collate(rows, pad_id=0, images=rows_image_inputs(processor, rows, store.folder))
    with torch.no_grad():
        logp, _ = forward_logprobs(learner, batch, TEMPERATURE, False)
    assert torch.allclose(logp[0, -n:], torch.tensor(gen.logprobs), atol=1e-4)

    # Weight sync: the learner's export reloads into the image engine, which then agrees again.
    with torch.no_grad():
        for p in learner.policy.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_hf_policy(learner.policy, tmp_path / "v1")
    asyncio.run(engine.load_weights(1, str(tmp_path / "v1")))
    after = asyncio.run(engine.generate(request, Sampling(max_new_tokens=4, temperature=0.0)))
    assert engine.version() == after.policy_version == 1
    m = len(after.token_ids)
    row = TrainRow(after.prompt_token_ids, after.token_ids, [True] * m, [False] * m, image_ref=ref)
    batch = collate([row], pad_id=0, images=rows_image_inputs(processor, [row], store.folder))
    with torch.no_grad():
        logp, _ = forward_logprobs(learner, batch, 1.0, False)
    assert torch.allclose(logp[0], torch.tensor(after.logprobs), atol=1e-4)
