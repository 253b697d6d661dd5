"""Tiny randomly initialised models built offline: a Llama-style LM and a LLaVA-style VLM.

They exist so that every code path (vLLM generation, DeepSpeed training, weight sync, images)
runs in seconds on a CPU. Sizes keep head_dim = 64, which vLLM's CPU attention needs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from learner.assets.chat import CHAT_TEMPLATE, IM_END, IMAGE_TOKEN
from learner.assets.corpus import task_corpus
from learner.assets.hf_format import write_llava_for_vllm
from learner.assets.tokenizer import train_byte_bpe

TINY_VOCAB = 1024
TINY_VISION_IMAGE_SIZE = 96
TINY_VISION_PATCH = 16


def _text_config(tokenizer, seed: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=4096,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        # A wide init makes logits peaky, so greedy decoding has clear winners and HF and vLLM
        # agree token for token (near-ties would flip on rounding).
        initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.pad_token_id,
    )


def _generation_config(tokenizer) -> GenerationConfig:
    return GenerationConfig(
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        do_sample=False,
    )


def build_tiny_lm(out_dir: Path, seed: int = 0) -> None:
    """A 2-layer Llama (hidden 128, head_dim 64) with a BPE tokenizer trained on task text."""
    tokenizer = train_byte_bpe(task_corpus(seed), vocab_size=TINY_VOCAB)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_text_config(tokenizer, seed))
    model.generation_config = _generation_config(tokenizer)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def build_tiny_vlm(out_dir: Path, seed: int = 0) -> None:
    """A LLaVA: a 2-layer CLIP vision tower + projector + the tiny Llama, with a PIL processor."""
    tokenizer = train_byte_bpe(task_corpus(seed), vocab_size=TINY_VOCAB)
    text_config = _text_config(tokenizer, seed)
    vision_config = CLIPVisionConfig(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=TINY_VISION_IMAGE_SIZE,
        patch_size=TINY_VISION_PATCH,
        projection_dim=128,
    )
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config = _generation_config(tokenizer)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": TINY_VISION_IMAGE_SIZE},
        crop_size={"height": TINY_VISION_IMAGE_SIZE, "width": TINY_VISION_IMAGE_SIZE},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=TINY_VISION_PATCH,
        vision_feature_select_strategy="default",
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    write_llava_for_vllm(out_dir)
