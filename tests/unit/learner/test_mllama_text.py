"""Llama-3.2-Vision (Mllama) on the text path, as configs/paper/gp-l.yaml and virl-l.yaml use it.

vLLM >= 0.11 no longer serves MllamaForConditionalGeneration, so those configs generate with the
HF engine. These tests build a tiny random Mllama offline (the tiny-lm tokenizer plus an image
token; no download) and check the pieces a text-only run goes through: the learner loads it as
a VLM and its padded forward gives the unpadded log-probs; the HF engine (text-only, as
``model.multimodal: false`` starts it) reports behaviour log-probs the learner reproduces; an
exported policy folder reloads in the engine; SFT rows tokenise with the Mllama processor.

Image rows (Mllama's aspect ratios and cross-attention mask next to pixel_values) are covered by
test_mllama_vision.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import torch

from learner.batching import TrainRow, collate
from learner.checkpoint import save_hf_policy
from learner.models import PolicyWithValue, hidden_size
from learner.ppo import forward_logprobs
from rollout.config import RolloutConfig
from rollout.engine import GenerationRequest, Sampling
from rollout.hf_engine import HFEngine
from tests.unit.learner.tiny_mllama import build_tiny_mllama

TEMPERATURE = 0.7


@pytest.fixture(scope="module")
def mllama_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random MllamaForConditionalGeneration with processor, built offline."""
    return build_tiny_mllama(tmp_path_factory.mktemp("tiny-mllama"))


def _prompt(path: Path, text: str) -> str:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path).apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )


def test_learner_loads_mllama_and_padding_does_not_change_log_probs(mllama_path: Path) -> None:
    model = PolicyWithValue.from_pretrained(mllama_path).eval()
    assert model.multimodal and type(model.policy).__name__ == "MllamaForConditionalGeneration"
    assert hidden_size(model.policy) == 64  # the text model's width feeds the value head
    rows = [
        TrainRow([5, 6, 7, 8, 9], [10, 11], [True, True], [False, False]),
        TrainRow([5, 6], [12, 13, 14, 15], [True] * 4, [False] * 4),
    ]
    with torch.no_grad():
        logp, values = forward_logprobs(model, collate(rows, pad_id=0))
        for i, r in enumerate(rows):
            x = torch.tensor([r.prompt_ids + r.response_ids])
            full = model.policy(input_ids=x).logits[0, :-1].log_softmax(-1)
            ref = full.gather(-1, x[0, 1:, None]).squeeze(-1)[-len(r.response_ids) :]
            assert torch.allclose(logp[i, -len(r.response_ids) :], ref, atol=1e-5)
    assert values is not None and values.shape == (2,)


def test_hf_engine_log_probs_match_the_learner_and_reload(
    mllama_path: Path, tmp_path: Path
) -> None:
    cfg = RolloutConfig(backend="hf", max_model_len=512, temperature=TEMPERATURE)
    engine = HFEngine(mllama_path, cfg, multimodal=False)  # text task: the text-only LM
    assert type(engine.model).__name__ == "MllamaForCausalLM"
    sampling = Sampling(max_new_tokens=8, temperature=TEMPERATURE)
    request = GenerationRequest(_prompt(mllama_path, "Cards: 3, 8, K, 2. Make 24."))
    torch.manual_seed(1)
    gen = asyncio.run(engine.generate(request, sampling))
    assert len(gen.token_ids) == len(gen.logprobs) > 0

    learner = PolicyWithValue.from_pretrained(mllama_path).eval()
    n = len(gen.token_ids)
    row = TrainRow(gen.prompt_token_ids, gen.token_ids, [True] * n, [False] * n)
    with torch.no_grad():
        logp, _ = forward_logprobs(learner, collate([row], pad_id=0), TEMPERATURE, False)
    assert torch.allclose(logp[0], torch.tensor(gen.logprobs), atol=1e-4)

    # Weight sync: the learner's export (the full VLM) reloads into the text-only engine.
    with torch.no_grad():
        for p in learner.policy.parameters():
            p.add_(0.01 * torch.randn_like(p))
    folder = tmp_path / "v1"
    save_hf_policy(learner.policy, folder)
    asyncio.run(engine.load_weights(1, str(folder)))
    assert engine.version() == 1
    greedy = Sampling(max_new_tokens=4, temperature=0.0)
    after = asyncio.run(engine.generate(request, greedy))
    m = len(after.token_ids)
    row = TrainRow(after.prompt_token_ids, after.token_ids, [True] * m, [False] * m)
    with torch.no_grad():
        logp, _ = forward_logprobs(learner, collate([row], pad_id=0), 1.0, False)
    assert torch.allclose(logp[0], torch.tensor(after.logprobs), atol=1e-4)


def test_sft_rows_tokenise_with_the_mllama_processor(mllama_path: Path, tmp_path: Path) -> None:
    from learner.sft import load_sft_rows
    from learner.sft_data import write_sft_parquet

    messages = [
        {"role": "user", "content": "Cards: 3, 8, K, 2. Make 24."},
        {"role": "assistant", "content": '{"formula": "(8 - 2) * 3 + 10 - 4"}'},
    ]
    example = {
        "messages": json.dumps(messages),
        "image_ref": None,
        "task_family": "generalpoints",
        "task_config": "{}",
        "task_state": "{}",
    }
    path = tmp_path / "sft.parquet"
    write_sft_parquet([example], path)
    rows = load_sft_rows(path, mllama_path)
    assert len(rows) == 1 and rows[0].image_ref is None
    assert 0 < sum(rows[0].answer_mask) < len(rows[0].response_ids)  # only the answer trains


def test_text_path_converts_to_a_llama_with_equal_logits(mllama_path: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, LlamaForCausalLM, MllamaForConditionalGeneration

    from learner.assets.mllama_text import convert

    out = convert(mllama_path, tmp_path / "text")
    llama = LlamaForCausalLM.from_pretrained(out).eval()
    mllama = MllamaForConditionalGeneration.from_pretrained(mllama_path).eval()
    assert llama.config.num_hidden_layers == 2  # 4 layers minus the 2 cross-attention ones
    ids = torch.randint(
        3, llama.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        assert torch.equal(llama(input_ids=ids).logits, mllama(input_ids=ids).logits)
    assert not PolicyWithValue.from_pretrained(out).multimodal  # a plain LM for the learner
    tok, ref = AutoTokenizer.from_pretrained(out), AutoTokenizer.from_pretrained(mllama_path)
    assert tok.chat_template == ref.chat_template and len(tok) == len(ref)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("language_model.model.layers.4.mlp.up_proj.weight", "model.layers.2.mlp.up_proj.weight"),
        (
            "model.language_model.layers.0.input_layernorm.weight",
            "model.layers.0.input_layernorm.weight",
        ),
        ("language_model.model.layers.3.cross_attn.q_proj.weight", None),
        ("language_model.model.embed_tokens.weight", "model.embed_tokens.weight"),
        ("language_model.lm_head.weight", "lm_head.weight"),
        ("vision_model.patch_embedding.weight", None),
        ("multi_modal_projector.weight", None),
    ],
)
def test_text_keys_of_both_checkpoint_layouts(key: str, expected: str | None) -> None:
    from learner.assets.mllama_text import text_key

    # 6 layers with cross-attention at 1 and 3: self-attention layers 0, 2, 4, 5.
    assert text_key(key, [0, 2, 4, 5]) == expected
