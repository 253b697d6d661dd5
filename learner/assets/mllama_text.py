"""Llama-3.2-Vision's text path as a plain Llama checkpoint that vLLM serves.

vLLM >= 0.11 no longer serves MllamaForConditionalGeneration. On text-only input (GP-L,
V-IRL-L: no image is passed) Mllama skips its cross-attention layers and the vision tower, and
what remains is a Llama decoder: the self-attention layers, the embedding table (minus the
extra image-token rows) and the LM head. ``convert`` copies exactly those tensors into a
LlamaForCausalLM folder, so its logits equal Mllama's on any text (tests/unit/learner/
test_mllama_text.py) and the same policy can be trained by the learner and served by vLLM.
Training it on text tasks is training the full model: the dropped layers get no gradient
there. N on the compute axis is then the text model's (~8.0B for 11B-Vision, not 10.7B).

    python -m learner.assets.mllama_text /models/Llama-3.2-11B-Vision-Instruct \\
        /models/Llama-3.2-11B-Vision-Instruct-text

Streams one safetensors shard at a time (an 11B checkpoint needs no GPU and ~10 GB of RAM).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

# Key prefixes of the text model: transformers 5 saves "model.language_model.*" and
# "lm_head.*"; the published checkpoints (transformers 4.x) use "language_model.model.*" and
# "language_model.lm_head.*". Everything else (vision_model, multi_modal_projector) is dropped.
_BODY = ("model.language_model.", "language_model.model.")
_HEAD = ("lm_head.", "language_model.lm_head.")
_LAYER = re.compile(r"layers\.(\d+)\.(.+)")


def text_key(key: str, keep: list[int]) -> str | None:
    """The Llama key of an Mllama tensor, or None when the text path never uses it."""
    for prefix in _HEAD:
        if key.startswith(prefix):
            return "lm_head." + key[len(prefix) :]
    for prefix in _BODY:
        if key.startswith(prefix):
            rest = key[len(prefix) :]
            layer = _LAYER.fullmatch(rest)
            if layer is None:
                return "model." + rest  # embed_tokens, norm
            index = int(layer.group(1))
            if index not in keep:
                return None  # a cross-attention layer
            return f"model.layers.{keep.index(index)}.{layer.group(2)}"
    return None


def llama_config(src: str | Path):  # -> transformers.LlamaConfig
    """The Llama config of the Mllama checkpoint's text model (its self-attention layers)."""
    from transformers import AutoConfig, LlamaConfig

    text = AutoConfig.from_pretrained(src).get_text_config()
    keep = self_attention_layers(text)
    return LlamaConfig(
        vocab_size=text.vocab_size,
        hidden_size=text.hidden_size,
        intermediate_size=text.intermediate_size,
        num_hidden_layers=len(keep),
        num_attention_heads=text.num_attention_heads,
        num_key_value_heads=text.num_key_value_heads,
        hidden_act=text.hidden_act,
        max_position_embeddings=text.max_position_embeddings,
        rms_norm_eps=text.rms_norm_eps,
        rope_parameters=dict(text.rope_parameters),
        tie_word_embeddings=False,
        bos_token_id=text.bos_token_id,
        eos_token_id=text.eos_token_id,
        pad_token_id=text.pad_token_id,
        dtype=text.dtype,
    )


def self_attention_layers(text_config) -> list[int]:
    return [
        i
        for i in range(text_config.num_hidden_layers)
        if i not in set(text_config.cross_attention_layers)
    ]


def convert(src: str | Path, dst: str | Path) -> Path:
    """Write the text path of the Mllama checkpoint ``src`` as a Llama folder ``dst``."""
    from safetensors import safe_open
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    src, dst = Path(src), Path(dst)
    text = AutoConfig.from_pretrained(src).get_text_config()
    keep = self_attention_layers(text)
    dst.mkdir(parents=True, exist_ok=True)
    weight_map: dict[str, str] = {}
    for shard in sorted(src.glob("*.safetensors")):
        tensors = {}
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                new = text_key(key, keep)
                if new is None:
                    continue
                tensor = f.get_tensor(key)
                if new == "model.embed_tokens.weight":
                    tensor = tensor[: text.vocab_size]  # rows past it: the image token(s)
                tensors[new] = tensor.contiguous()
        if tensors:
            save_file(tensors, str(dst / shard.name), metadata={"format": "pt"})
            weight_map |= dict.fromkeys(tensors, shard.name)
    expected = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    if not expected <= set(weight_map):
        raise ValueError(
            f"{src}: no Mllama text model found (missing {expected - set(weight_map)})"
        )
    index = {"metadata": {}, "weight_map": dict(sorted(weight_map.items()))}
    (dst / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    llama_config(src).save_pretrained(dst)
    if (src / "generation_config.json").is_file():
        GenerationConfig.from_pretrained(src).save_pretrained(dst)
    tokenizer = AutoTokenizer.from_pretrained(src)
    if tokenizer.chat_template is None:  # some releases keep it with the processor only
        from transformers import AutoProcessor

        tokenizer.chat_template = AutoProcessor.from_pretrained(src).chat_template
    tokenizer.save_pretrained(dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", help="Llama-3.2-Vision HF folder (MllamaForConditionalGeneration)")
    parser.add_argument("dst", help="output folder (a LlamaForCausalLM checkpoint)")
    args = parser.parse_args(argv)
    print(convert(args.src, args.dst))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
