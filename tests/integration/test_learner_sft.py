"""SFT stage in the LearnerGroup: expert GeneralPoints answers from the oracle, loss on
assistant tokens only; the loss falls, and the exported HF checkpoint loads in transformers
and answers a training prompt greedily with (a prefix of) the expert answer."""

from __future__ import annotations

import json

import pytest
import torch

from envs.families import SFTRequest, config_dict, family
from envs.generalpoints.config import GeneralPointsConfig
from learner.assets import prepare
from learner.config import LearnerConfig
from learner.group import LearnerGroup
from learner.sft import load_sft_rows, run_sft
from learner.sft_data import read_sft_parquet, write_sft_parquet

EXAMPLES = 8
EPOCHS = 12


def greedy_agreement(model_dir, messages) -> int:
    """Leading tokens of the greedy answer that equal the expert answer's tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    prompt = tok.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    expert = tok(messages[1]["content"], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=len(expert), do_sample=False)[0, ids.shape[1] :]
    n = 0
    for a, b in zip(out.tolist(), expert):
        if a != b:
            break
        n += 1
    return n


@pytest.mark.timeout(300)
def test_sft_lowers_loss_and_exports_a_loadable_checkpoint(ray_cluster, tmp_path) -> None:
    base = prepare("tiny-lm")
    data = tmp_path / "gp_sft.parquet"
    gp = config_dict(GeneralPointsConfig(num_cards=2, target_mode="one_op"))
    write_sft_parquet(family("generalpoints").sft_examples(SFTRequest(gp, EXAMPLES, seed=0)), data)
    rows = load_sft_rows(data, base)
    assert len(rows) == EXAMPLES
    cfg = LearnerConfig(
        micro_batch_size=4,
        lr=3e-3,
        lr_schedule="cosine",
        warmup_steps=2,
        total_steps=EPOCHS * EXAMPLES // 4,
        min_lr_ratio=0.1,
    )
    group = LearnerGroup(cfg, str(base))
    try:
        history = run_sft(group, rows, EPOCHS, tmp_path / "sft_hf", seed=0)
        state = group.state()
    finally:
        group.shutdown()
    losses = [m["learner/loss"] for m in history]
    assert len(history) == EPOCHS * EXAMPLES // 4 == state["step"]
    assert sum(losses[-2:]) / 2 < 0.5 * sum(losses[:2]) / 2, losses
    assert history[0]["learner/lr"] == pytest.approx(cfg.lr / 2)  # warmup step 1 of 2
    messages = read_sft_parquet(data)[0]["messages"]
    assert greedy_agreement(base, messages) == 0
    agree = greedy_agreement(tmp_path / "sft_hf", messages)
    assert agree >= 3  # 6 measured (seeded); the random base model agrees on 0
    assert json.loads((tmp_path / "sft_hf" / "config.json").read_text())["model_type"] == "llama"
