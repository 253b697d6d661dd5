"""SFT data from the oracles and the assistant-only loss mask."""

from __future__ import annotations

import json

import pytest

from envs.families import SFTRequest, config_dict, family
from envs.generalpoints.config import GeneralPointsConfig
from envs.virl.config import VirlConfig
from learner.assets import prepare
from learner.sft import as_train_row, load_sft_rows, tokenize_conversation
from learner.sft_data import read_sft_parquet, write_sft_parquet
from rollout.images import ImageStore
from verifier.generalpoints import GeneralPointsVerifier


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(prepare("tiny-lm"))


def test_mask_covers_exactly_the_assistant_turns(tokenizer) -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": "B2"},
    ]
    ids, mask = tokenize_conversation(tokenizer, tokenizer, messages)
    trained = tokenizer.decode([t for t, m in zip(ids, mask) if m])
    # each assistant content plus its end-of-turn marker; no role headers, no user text
    assert trained == "A1<|im_end|>B2<|im_end|>"
    assert tokenizer.decode(ids) == tokenizer.apply_chat_template(messages, tokenize=False)
    assert not mask[-1]  # the template's newline after the last end-of-turn
    row = as_train_row(ids, mask)
    assert row.prompt_ids == ids[:1] and row.answer_mask == mask[1:]


def test_generalpoints_rows_are_single_turn_expert_answers() -> None:
    cfg = GeneralPointsConfig(num_cards=2, target_mode="one_op")
    request = SFTRequest(config_dict(cfg), 4, seed=1, thought=True)
    rows = list(family("generalpoints").sft_examples(request))
    verifier = GeneralPointsVerifier(cfg)
    for r in rows:
        messages = json.loads(r["messages"])
        assert [m["role"] for m in messages] == ["user", "assistant"]
        state = json.loads(r["task_state"])
        from verifier.generalpoints_rules import GeneralPointsTask

        verdict = verifier.verify(GeneralPointsTask.coerce(state), messages[1]["content"])
        assert verdict.success
        assert r["image_ref"] is None


def test_virl_rows_hold_the_conversation_so_far_and_images(tmp_path) -> None:
    store = ImageStore(tmp_path / "img")
    cfg = config_dict(VirlConfig(observation_mode="image"))
    rows = list(family("virl").sft_examples(SFTRequest(cfg, 1, seed=0, image_store=store)))
    assert len(rows) >= 2
    for k, r in enumerate(rows):
        messages = json.loads(r["messages"])
        assert [m["role"] for m in messages] == ["user", "assistant"] * (k + 1)
        with_image = [i for i, m in enumerate(messages) if not isinstance(m["content"], str)]
        assert with_image == [len(messages) - 2]  # only the newest observation keeps its image
        assert store.get(r["image_ref"]).size[0] > 0
    assert json.loads(json.loads(rows[-1]["messages"])[-1]["content"])["action"] == "stop()"


def test_vlm_rows_expand_image_tokens_like_the_processor(tmp_path) -> None:
    from transformers import AutoProcessor

    store = ImageStore(tmp_path / "img")
    cfg = GeneralPointsConfig(num_cards=2, target_mode="one_op", observation_mode="image")
    path = tmp_path / "sft.parquet"
    request = SFTRequest(config_dict(cfg), 2, 0, store)
    write_sft_parquet(family("generalpoints").sft_examples(request), path)
    vlm = prepare("tiny-vlm")
    rows = load_sft_rows(path, vlm)
    proc = AutoProcessor.from_pretrained(vlm)
    messages = read_sft_parquet(path)[0]["messages"]
    text = proc.apply_chat_template(messages, tokenize=False)
    enc = proc(text=[text], images=[store.get(rows[0].image_ref)])
    assert rows[0].prompt_ids + rows[0].response_ids == enc["input_ids"][0]
    text_rows = load_sft_rows(path, prepare("tiny-lm"))
    assert text_rows[0].image_ref is None and len(text_rows) == 2
