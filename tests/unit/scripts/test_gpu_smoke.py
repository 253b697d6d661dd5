"""`make gpu-smoke` on a machine without CUDA: it stops at its preflight with what is missing,
and still writes its report; its tiny Mllama converts to a loadable text-only Llama."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "gpu_smoke.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU behaviour of the smoke script")
def test_without_cuda_it_fails_at_the_preflight_with_what_to_do(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "[FAIL] 0 preflight" in result.stdout and "no CUDA device" in result.stdout
    report = json.loads(out.read_text())
    assert [(s["stage"], s["status"]) for s in report["stages"]] == [(0, "FAIL")]
    assert "pip install -e '.[gpu]'" in report["stages"][0]["error"]


def test_the_tiny_mllama_converts_to_a_text_llama(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from learner.assets.mllama_text import convert

    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    assert spec is not None and spec.loader is not None
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    text = convert(smoke.tiny_mllama(tmp_path / "mllama"), tmp_path / "text")
    model = AutoModelForCausalLM.from_pretrained(text)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.num_hidden_layers == 2  # the cross-attention layer is dropped
