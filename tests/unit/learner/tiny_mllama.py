"""A tiny random Llama-3.2-Vision (MllamaForConditionalGeneration) with its processor, built
offline from the tiny-lm tokenizer plus an ``<|image|>`` token (no download)."""

from __future__ import annotations

from pathlib import Path

import torch

from learner.assets import prepare

IMAGE_TOKEN = "<|image|>"
IMAGE_SIDE = 56  # one tile is 56 x 56 pixels (Llama-3.2-Vision: 560)
MAX_TILES = 2


def build_tiny_mllama(out: Path) -> Path:
    """Write the model, processor and tokenizer to ``out``; returns ``out``.

    The chat template is tiny-lm's with an image part rendered as one ``<|image|>`` token, as
    Llama-3.2-Vision's template does (text-only conversations render exactly as tiny-lm's)."""
    from transformers import (
        AutoTokenizer,
        MllamaConfig,
        MllamaForConditionalGeneration,
        MllamaImageProcessorPil,
        MllamaProcessor,
    )

    tok = AutoTokenizer.from_pretrained(prepare("tiny-lm"))
    tok.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    tok.chat_template = tok.chat_template.replace("'<image>\n'", f"'{IMAGE_TOKEN}'")
    assert IMAGE_TOKEN in tok.chat_template
    ids = {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id}
    ids["eos_token_id"] = tok.eos_token_id
    text = {
        "vocab_size": len(tok),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "cross_attention_layers": [1, 3],
        **ids,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_global_layers": 1,
        "attention_heads": 2,
        "image_size": IMAGE_SIDE,
        "patch_size": 14,
        "max_num_tiles": MAX_TILES,
        "intermediate_layers_indices": [0, 1],
        "vision_output_dim": 32 * 3,  # the last layer and the 2 intermediate ones, concatenated
        "supported_aspect_ratios": [[1, 1], [1, 2], [2, 1]],
    }
    config = MllamaConfig(
        text_config=text,
        vision_config=vision,
        image_token_index=tok.convert_tokens_to_ids(IMAGE_TOKEN),
    )
    torch.manual_seed(0)
    model = MllamaForConditionalGeneration(config)
    with torch.no_grad():  # open the tanh gates (initialised shut: the image would not matter)
        for name, p in model.named_parameters():
            if "gate" in name.rsplit(".", 1)[-1] and p.numel() == 1:
                p.fill_(1.0)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    image_processor = MllamaImageProcessorPil(
        size={"height": IMAGE_SIDE, "width": IMAGE_SIDE}, max_image_tiles=MAX_TILES
    )
    processor = MllamaProcessor(image_processor, tok, chat_template=tok.chat_template)
    processor.save_pretrained(out)
    tok.save_pretrained(out)
    return out
