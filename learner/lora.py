"""LoRA on the policy (learner.lora), through peft, under DeepSpeed.

The adapters are injected into the HF model in place (peft's ``inject_adapter_in_model``):
the policy stays the same class with the same ``config``, decoder and output head, so every
forward path (padded, packed prefix trees, images) runs unchanged, and peft freezes the base
weights, so DeepSpeed's optimizer holds only the adapters (and the value model).

Rollout engines never see the adapters. Every export (weight sync, HF folders, the policy in a
checkpoint) writes MERGED weights under the base model's own key names, W + B A x alpha/r per
adapted layer (peft's ``get_delta_weight``, the delta merge-and-unload adds), computed on the
side: the trainable adapter in the learner is never merged or touched. A training checkpoint
also keeps the adapter alone (``adapter/``, peft's layout), and DeepSpeed's own checkpoint
holds its parameters and optimizer state, so resume restores it exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

ADAPTER = "default"  # peft's adapter name
ADAPTER_DIR = "adapter"  # in a training checkpoint (learner/checkpoint.py)
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def add_lora(policy: nn.Module, cfg: Any, dtype: torch.dtype) -> nn.Module:
    """Inject LoRA adapters (``cfg``: learner.lora) into ``policy`` in place; only they train.

    Adapter weights take the training ``dtype`` (peft makes them float32), so DeepSpeed sees
    one dtype. Raises ValueError naming learner.lora.target_modules when nothing matches."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError as err:
        raise ImportError(
            "learner.lora.enabled needs the peft package (`make setup` installs it; elsewhere "
            "`pip install -e '.[lora]'`)"
        ) from err

    config = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
    )
    try:
        inject_adapter_in_model(config, policy, adapter_name=ADAPTER)
    except ValueError as err:  # peft: "Target modules {...} not found in the base model"
        names = sorted({n.rsplit(".", 1)[-1] for n, m in policy.named_modules() if _linear(m)})
        raise ValueError(
            f"learner.lora.target_modules: {list(cfg.target_modules)} match no layer of this "
            f"model ({err}); its linear layers are named {names}"
        ) from err
    for module in lora_layers(policy).values():
        for name in ("lora_A", "lora_B"):
            getattr(module, name).to(dtype)
    return policy


def _linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear)


def lora_layers(policy: nn.Module) -> dict[str, nn.Module]:
    """The adapted layers by module name (empty without LoRA)."""
    from peft.tuners.lora import LoraLayer

    return {n: m for n, m in policy.named_modules() if isinstance(m, LoraLayer)}


def has_lora(policy: nn.Module) -> bool:
    return any(".lora_A." in n for n, _ in policy.named_parameters())


def policy_state_dict(policy: nn.Module) -> dict[str, torch.Tensor]:
    """The policy's tensors as the base model names them: its state dict, with each adapted
    layer's weight merged (W + delta) under ``<layer>.weight`` and the adapters left out.
    Without LoRA, the state dict itself. Call with full parameters (ZeRO-3: gathered)."""
    state = policy.state_dict()
    layers = lora_layers(policy) if has_lora(policy) else {}
    if not layers:
        return dict(state)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if ".lora_" in key:
            continue
        out[key.replace(".base_layer.", ".")] = tensor
    with torch.no_grad():
        for name, module in layers.items():
            base = module.get_base_layer().weight
            delta = sum(
                (module.get_delta_weight(a) for a in module.active_adapters if a in module.lora_A),
                torch.zeros_like(base),
            )
            # A new tensor: the learner's base weight and adapter stay as they are.
            out[f"{name}.weight"] = (base.detach() + delta.to(base.dtype)).contiguous()
    return out


def save_adapter(policy: nn.Module, folder: Path) -> None:
    """The adapter alone, in peft's layout (adapter_config.json + adapter_model.safetensors):
    ``peft.PeftModel.from_pretrained(base, folder)`` loads it onto the base model."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = get_peft_model_state_dict(policy, adapter_name=ADAPTER)
    # PeftModel's own names (it wraps the model as base_model.model), as its save writes them.
    tensors = {f"base_model.model.{k}": v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_file(tensors, folder / ADAPTER_WEIGHTS)
    config = policy.peft_config[ADAPTER].to_dict()
    config["target_modules"] = sorted(config["target_modules"])  # a set in peft
    (folder / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2, default=str))
