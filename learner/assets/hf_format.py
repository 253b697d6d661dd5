"""Checkpoint layout fixes so one saved folder loads in transformers and in vLLM alike."""

from __future__ import annotations

from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

_VISION_PREFIX = "vision_tower."
_CLIP_INNER = "vision_model."


def write_llava_for_vllm(folder: str | Path) -> int:
    """Rename LLaVA vision-tower keys to the layout vLLM's CLIP loader expects.

    transformers 5 flattens CLIPVisionModel (``vision_tower.embeddings...``); vLLM 0.32 and
    the published LLaVA checkpoints use ``vision_tower.vision_model.embeddings...``, which
    transformers still loads. Returns the number of renamed tensors.
    """
    renamed = 0
    for shard in sorted(Path(folder).glob("*.safetensors")):
        tensors = {}
        with safe_open(str(shard), framework="pt") as f:
            metadata = f.metadata() or {}
            for key in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                new_key = key
                if key.startswith(_VISION_PREFIX) and not key.startswith(
                    _VISION_PREFIX + _CLIP_INNER
                ):
                    new_key = _VISION_PREFIX + _CLIP_INNER + key[len(_VISION_PREFIX) :]
                    renamed += 1
                tensors[new_key] = f.get_tensor(key)
        if renamed:
            save_file(tensors, str(shard), metadata={**metadata, "format": "pt"})
    return renamed
