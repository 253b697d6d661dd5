"""LoRA through peft: only the adapters train, every export is the merged policy under the base
model's own names (the adapter itself untouched), and the adapter saves in peft's layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from cluster.config import load_experiment
from common.typed_config import ConfigError
from learner.assets import prepare
from learner.checkpoint import save_hf_policy
from learner.config import LoRAConfig
from learner.engine_weights import WEIGHTS_FILE, engine_tensors, write_engine_weights
from learner.lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS, add_lora, has_lora, save_adapter

X = torch.tensor([[1, 5, 9, 12, 3, 7]])


def _trained_lora_policy(cfg: LoRAConfig | None = None) -> torch.nn.Module:
    """tiny-lm with adapters whose B is non-zero (as after training), in eval mode."""
    torch.manual_seed(0)
    policy = AutoModelForCausalLM.from_pretrained(prepare("tiny-lm"))
    add_lora(policy, cfg or LoRAConfig(enabled=True, r=4, alpha=8.0), torch.float32)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if ".lora_B." in name:
                p.normal_(0, 0.05)
    return policy.eval()


def test_only_the_adapters_train() -> None:
    policy = _trained_lora_policy()
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert {n.split(".")[-4] for n in trainable} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert has_lora(policy)


def test_engine_weights_are_merged_under_the_base_names(tmp_path: Path) -> None:
    policy = _trained_lora_policy()
    base = AutoModelForCausalLM.from_pretrained(prepare("tiny-lm"))
    tensors = engine_tensors(policy)
    assert tensors is not None
    assert set(tensors) == set(engine_tensors(base) or {})  # no lora_ or base_layer keys
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    write_engine_weights(policy, tmp_path)
    assert (tmp_path / WEIGHTS_FILE).is_file()
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        want, got = policy(X).logits, reloaded(X).logits
        plain = base.eval()(X).logits
    assert torch.allclose(want, got, atol=1e-4)  # the merge is the adapted forward (float rounding)
    assert not torch.allclose(plain, got, atol=1e-3)  # and the adapters did change it
    for n, p in policy.named_parameters():  # merged on the side: the adapter is intact
        assert torch.equal(p, before[n]), n


def test_hf_folder_and_adapter_of_a_checkpoint(tmp_path: Path) -> None:
    policy = _trained_lora_policy()
    files = save_hf_policy(policy, tmp_path / "hf")
    assert [Path(f).name for f in files] == ["model.safetensors"]
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        assert torch.allclose(policy(X).logits, reloaded(X).logits, atol=1e-4)
    save_adapter(policy, tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / ADAPTER_CONFIG).read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8.0 and config["peft_type"] == "LORA"
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(prepare("tiny-lm"))
    assert (tmp_path / "adapter" / ADAPTER_WEIGHTS).is_file()
    loaded = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()  # peft reads it back
    with torch.no_grad():
        assert torch.allclose(policy(X).logits, loaded(X).logits, atol=1e-4)


def test_unknown_target_modules_name_the_field() -> None:
    policy = AutoModelForCausalLM.from_pretrained(prepare("tiny-lm"))
    cfg = LoRAConfig(enabled=True, target_modules=["qkv"])
    with pytest.raises(ValueError, match=r"learner.lora.target_modules: \['qkv'\].*q_proj"):
        add_lora(policy, cfg, torch.float32)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("learner.lora.r=0", "learner.lora.r: must be >= 1"),
        ("learner.lora.dropout=1.0", "learner.lora.dropout: must be in"),
        ("learner.lora.target_modules=[]", "learner.lora.target_modules: must name"),
        ("rollout.weight_sync=nccl", "learner.lora.enabled: the NCCL weight broadcast"),
    ],
)
def test_bad_lora_config_names_the_field(override: str, message: str) -> None:
    overrides = ["learner.lora.enabled=true", override]
    if "nccl" in override:
        overrides += ["rollout.gpus_per_worker=1"]
    with pytest.raises(ConfigError, match=message):
        load_experiment(None, overrides)
